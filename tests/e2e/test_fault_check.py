"""The end-of-session fault check catches what a test provoked without declaring it: an
actor that raises for real (the test-only actor of workers.testing, sent through Redis to
the real worker) and a worker killed by a signal. Each test runs the check on a copy of
the ledger taken before it declared (the fault is reported), and on the ledger itself
(its declaration covers it, so the session does not fail)."""
from __future__ import annotations

import os
import signal
import uuid

import pytest

from tests.support.waiting import wait_until
from workers import messages

pytestmark = pytest.mark.e2e


def matching(faults, text: str) -> list:
    return [f for f in faults if text in f.text]


def test_the_check_reports_an_actor_that_raises(platform):
    marker = uuid.uuid4().hex
    undeclared = platform.faults.copy()
    platform.expect_log("worker", rf"TestHookError: raised on purpose by the test hook "
                                  rf"\({marker}\)")
    messages.send(messages.RAISE_FOR_TEST, messages.DEFAULT_QUEUE, (marker,))
    (fault,) = wait_until(lambda: matching(platform.fault_report(undeclared), marker), 60,
                          "the worker logged the actor's failure")
    print(f"[fault] reported without the declaration:\n{fault}")
    assert fault.program == "worker" and "[ERROR] Failed to process message" in fault.text
    assert "Traceback (most recent call last)" in fault.text
    assert not matching(platform.fault_report(), marker)


@pytest.mark.disruptive
def test_the_check_reports_a_worker_killed_by_a_signal(platform, api):
    undeclared = platform.faults.copy()
    platform.expect_restart("worker")
    pid = platform.program_pid("worker")
    os.killpg(pid, signal.SIGKILL)  # the whole group: dramatiq and its children
    wait_until(lambda: platform.program_pid("worker") not in (0, pid), 30,
               "supervisord restarted the worker")
    reported = matching(platform.fault_report(undeclared), "exited: worker (terminated by SIGKILL")
    print(f"[fault] reported without the declaration: {[str(f) for f in reported]}")
    assert len(reported) == 1
    assert not matching(platform.fault_report(), "exited: worker")
    # the restarted worker works
    api.job(api.post("/api/containers", json={"image": "harbormaster/busybox-httpd",
                                              "name": f"after-kill-{uuid.uuid4().hex[:8]}"}))
