"""Wait on a condition with a deadline, printing how long it took."""
from __future__ import annotations

import time


def wait_until(condition, timeout: float, what: str, interval: float = 0.2):
    """Return condition()'s first truthy value; fail naming ``what`` after ``timeout``."""
    started = time.monotonic()
    last = None
    while True:
        last = condition()
        elapsed = time.monotonic() - started
        if last:
            print(f"[wait] {what}: {elapsed:.2f}s")
            return last
        if elapsed > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; "
                                 f"last value: {last!r}")
        time.sleep(interval)
