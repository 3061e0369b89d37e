"""Test-only actors, registered only when the configuration enables test hooks
(HARBORMASTER_TEST_HOOKS, set by the test suite's profile; never in production).

``raise_for_test`` raises a real exception inside a real worker thread, so the suite can
show that its end-of-session check catches an actor failing (the worker logs the error
and its traceback as it would for any actor).
"""
from __future__ import annotations

import dramatiq

import config
from workers import messages
from workers.broker import get_broker

RAISE_FOR_TEST = "raise_for_test"


class TestHookError(RuntimeError):
    """What raise_for_test raises: a failure nobody handles."""

    __test__ = False  # not a test class (pytest collects Test* names)


if config.load().test_hooks:
    get_broker()

    @dramatiq.actor(actor_name=RAISE_FOR_TEST, queue_name=messages.DEFAULT_QUEUE,
                    max_retries=0)
    def raise_for_test(marker: str):
        raise TestHookError(f"raised on purpose by the test hook ({marker})")
