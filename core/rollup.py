"""Closing periods: what each period of one length gets of an instance's usage, and of a
node's capacity, in one run of the rollup (core.metering does the arithmetic).

A run at ``now`` closes the periods that ended ``close_delay`` ago or more (a sample taken
just before a boundary usually arrives within that delay). A closed period's row is final.
What is learned after a period closed goes to the earliest period still open when it is
learned, so nothing is lost and nothing counted twice:
- a sample's counter deltas are added once, when the sample is first consumed; the part of
  them that falls in an already closed period is added to the earliest open one;
- time amounts (running, paused, requested) are recomputed from the whole lifecycle: a
  period closing gets what the lifecycle says up to its end less what closed periods were
  given (``billed``), an open period what the lifecycle says up to its end (or now) less
  what came before it; never a negative amount.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.metering import (FOREVER, Amounts, Cursor, Defaults, Lifecycle, consume, cut,
                           minus, period_of, time_totals, total)


@dataclass(frozen=True)
class Window:
    """One run of the rollup for one period length (all in µs)."""
    length: int
    closed_until: int     # periods before this were closed by earlier runs
    closing_until: int    # this run closes those before this (>= closed_until)
    now: int
    since: int = 0        # metering started here (nothing before it is billed)

    @staticmethod
    def at(now: int, length: int, close_delay: int, closed_until: int | None = None,
           since: int | None = None) -> "Window":
        """The window of a run at ``now`` after one that closed up to ``closed_until`` with
        metering started ``since``; the first run of a length (None) closes nothing, and
        metering starts at its earliest open period."""
        closing = period_of(now - close_delay, length)
        if closed_until is None:
            closed_until = since = closing
        elif since is None:
            raise ValueError("a later run needs the moment metering started")
        return Window(length, closed_until, max(closed_until, closing), now, since)

    def periods_from(self, first: int):
        """Period starts from ``first`` (not before closed_until) to the one holding now."""
        period = max(self.closed_until, period_of(first, self.length))
        while period <= self.now:
            yield period
            period += self.length


@dataclass(frozen=True)
class Rolled:
    cursor: Cursor | None
    billed: Amounts                  # time amounts of closed periods (this run's included)
    time_rows: dict[int, Amounts]    # period start -> time amounts to set
    sample_rows: dict[int, Amounts]  # period start -> sampled amounts to add


def roll(life: Lifecycle, cursor: Cursor | None, billed: Amounts, samples,
         defaults: Defaults, w: Window) -> Rolled:
    """One instance's share of a run: its new samples, and its time amounts of every period
    from the earliest not yet closed to the one holding ``now``."""
    cursor, pieces = consume(cursor, samples, life, w.length, w.now)
    sample_rows: dict[int, Amounts] = {}
    for period, amounts in pieces.items():
        if period < w.since:
            continue  # used before metering started
        # late: its period is closed, so it goes to the earliest period open when it came
        target = w.closed_until if period < w.closed_until else period
        sample_rows[target] = sample_rows.get(target, Amounts()) + amounts
    time_rows, billed = time_rows_of(life, billed, defaults, w)
    return Rolled(cursor, billed, time_rows, sample_rows)


def time_rows_of(life: Lifecycle, billed: Amounts, defaults: Defaults,
                 w: Window) -> tuple[dict[int, Amounts], Amounts]:
    rows: dict[int, Amounts] = {}
    if not life.runs:
        return rows, billed
    before = time_totals(life, w.since, defaults)   # what ran before metering started
    totals = lambda t: time_totals(life, t, defaults) - before  # noqa: E731
    first = min(run.start for run in life.runs)
    for period in w.periods_from(first):
        end = period + w.length
        if end <= w.closing_until:          # closes now: final
            value = (totals(end) - billed).clamped()
            billed = billed + value
        elif period == w.closing_until:     # the earliest open period takes what is late
            value = (totals(min(end, w.now)) - billed).clamped()
        else:
            value = (totals(min(end, w.now)) - totals(period)).clamped()
        if value.any():
            rows[period] = value
    return rows, billed


@dataclass(frozen=True)
class Capacity:
    up_us: int
    cpu: int          # nanocore-µs
    memory: int       # byte-µs


def capacity_rows(joined: int, outages, cpu_nanos: int, memory: int,
                  w: Window) -> dict[int, Capacity]:
    """A node's capacity in each period from the earliest not yet closed to now: what it
    offers placement x the time it was up (since it joined, outside its outages)."""
    holes = cut(outages, FOREVER)
    rows = {}
    for period in w.periods_from(joined):
        start, end = max(period, joined), min(period + w.length, w.now)
        up = total(minus([(start, end)], holes)) if end > start else 0
        rows[period] = Capacity(up, up * cpu_nanos, up * memory)
    return rows
