"""Docker inspect documents -> our states and fields; which observed changes are news."""
from __future__ import annotations

import pytest

from core import observe


def inspect_doc(status="running", exit_code=0, ports=None, pid=42):
    return {
        "Id": "a" * 64, "Name": "/web-1", "RestartCount": 2,
        "State": {"Status": status, "ExitCode": exit_code, "Pid": pid,
                  "StartedAt": "2026-11-22T04:32:37.911882123Z",
                  "FinishedAt": "0001-01-01T00:00:00Z"},
        "Config": {"Image": "nginx", "Labels": {"harbormaster.kind": "standalone",
                                                 "harbormaster.node": "local",
                                                 "harbormaster.image": "nginx:alpine"}},
        "NetworkSettings": {"Ports": ports if ports is not None else
                            {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}]}},
        "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}},
    }


@pytest.mark.parametrize("docker_status,state", [
    ("created", "created"), ("running", "running"), ("paused", "paused"),
    ("restarting", "starting"), ("removing", "stopped"), ("exited", "stopped"),
    ("dead", "error"), ("weird", "error")])
def test_states(docker_status, state):
    assert observe.state_of(inspect_doc(docker_status)) == state


def test_fields_of_a_running_container():
    f = observe.fields(inspect_doc())
    assert f["name"] == "web-1" and f["state"] == "running" and f["pid"] == 42
    assert f["ports"] == {"80/tcp": 32768} and f["restarts"] == 2
    assert f["exit_code"] is None and f["finished_at"] is None
    assert f["started_at"].isoformat() == "2026-11-22T04:32:37.911882+00:00"
    assert f["image"] == "nginx:alpine" and f["kind"] == "standalone"


def test_fields_of_a_stopped_container_keep_the_exit_code_and_requested_ports():
    f = observe.fields(inspect_doc("exited", exit_code=137, ports={}, pid=0))
    assert f["state"] == "stopped" and f["exit_code"] == 137 and f["pid"] is None
    assert f["ports"] == {"80/tcp": None}


@pytest.mark.parametrize("previous,current,action,news", [
    (None, "running", "start", False),          # first sight: the actor recorded it
    ("starting", "running", "start", False),    # an actor was starting it
    ("created", "running", "start", False),     # the reconciler's create then start
    ("stopping", "stopped", "stop", False),
    ("running", "stopped", "stop", True),       # stopped from outside
    ("running", "running", "sync", False),
    ("stopped", "running", "start", True),      # started from outside
    ("running", "stopped", "die", True),        # die and oom always carry news
    ("stopping", "stopped", "die", True),
    ("running", "running", "oom", True),
])
def test_event_is_news(previous, current, action, news):
    assert observe.event_is_news(previous, current, action) is news
