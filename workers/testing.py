"""Test-only actors, registered only when the configuration enables test hooks
(HARBORMASTER_TEST_HOOKS, set by the test suite's profile; never in production).

``raise_for_test`` raises a real exception inside a real worker thread, so the suite can
show that its end-of-session check catches an actor failing (the worker logs the error
and its traceback as it would for any actor).
"""
from __future__ import annotations

import dramatiq

from workers import messages, runtime

class TestHookError(RuntimeError):
    """What raise_for_test raises: a failure nobody handles."""

    __test__ = False  # not a test class (pytest collects Test* names)


if runtime.settings().test_hooks:
    @dramatiq.actor(actor_name=messages.RAISE_FOR_TEST, queue_name=messages.DEFAULT_QUEUE,
                    max_retries=0)
    def raise_for_test(marker: str):
        raise TestHookError(f"raised on purpose by the test hook ({marker})")
