"""Listing containers while others remove them (issue 12, finding 9).

docker-py's high-level ``containers.list`` inspects every container it listed; one removed
in between raises NotFound. Every helper that lists containers (the test platform's, the
Docker watcher's, docker_ops') must survive containers vanishing under it. The race is
reproduced for real: containers are removed in a thread while the helpers list them, in a
loop, until the plain docker-py call has been seen to raise at least once.
"""
from __future__ import annotations

import threading
import time
import uuid

import docker
import pytest

from tests.support.dockerwatch import DockerWatch
from tests.support.platform import TestPlatform

pytestmark = pytest.mark.e2e
IMAGE = "harbormaster/busybox-httpd"
BATCH = 20


def remove_all(client: docker.DockerClient, ids: list[str], errors: list) -> None:
    try:
        for cid in ids:
            client.api.remove_container(cid, force=True)
    except Exception as exc:  # noqa: BLE001 - a dead helper thread must fail the test
        errors.append(exc)


def test_listing_helpers_survive_containers_removed_meanwhile(platform):
    token = uuid.uuid4().hex[:12]
    # a cluster id no running platform owns: its agent never sees these containers
    lister = TestPlatform(second_node=False)
    lister.data.rmdir()  # never started: only its listing is used
    lister._cluster = f"race-{token}"
    labels = {"harbormaster.cluster": lister.cluster_id, "harbormaster.race": token}
    label_filter = [f"{k}={v}" for k, v in labels.items()]
    client = platform.docker
    from workers import docker_ops
    helpers = {
        "TestPlatform.containers": lambda: lister.containers(**{"harbormaster.race": token}),
        "DockerWatch": lambda: DockerWatch(f"harbormaster.race={token}").__enter__().stop(),
        "docker_ops.list_containers": lambda: docker_ops.list_containers(labels),
    }
    control_raised = rounds = 0
    deadline = time.monotonic() + 120
    remover = None
    try:
        while control_raised == 0:
            assert time.monotonic() < deadline, "the race never showed in 120 s"
            rounds += 1
            ids = [client.api.create_container(IMAGE, command=["true"], labels=labels)["Id"]
                   for _ in range(BATCH)]
            errors: list = []
            remover = threading.Thread(target=remove_all, args=(client, ids, errors))
            remover.start()
            while remover.is_alive():
                try:  # the control: docker-py's own list, inspecting what it listed
                    client.containers.list(all=True, filters={"label": label_filter})
                except docker.errors.NotFound:
                    control_raised += 1
                for name, helper in helpers.items():
                    try:
                        helper()
                    except docker.errors.NotFound as exc:
                        raise AssertionError(f"{name} raised on a removed container") from exc
            remover.join()
            assert not errors, errors
        print(f"[race] docker-py's list raised {control_raised} time(s) in {rounds} round(s)")
    finally:
        if remover is not None:
            remover.join()
        for entry in client.api.containers(all=True, filters={"label": label_filter}):
            client.api.remove_container(entry["Id"], force=True)
