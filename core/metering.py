"""Usage metering: an instance's lifecycle and cumulative counters -> usage per period.

Times are integer microseconds since the epoch; a period is [start, start + length) with
start a multiple of its length (so an hour is a UTC hour, a day a UTC day). Amounts are
integers, so splitting is exact: what a span or a counter's delta gives each period adds up
to the whole, to the unit. Units: time µs; CPU used core-ns (the cgroup's counter); CPU
requested nanocore-µs (cores x 1e9 x µs); memory byte-µs; network bytes.

The rules (issue 17):
- running time is Docker's StartedAt..FinishedAt (runs) less pauses, and less the node's
  outages (declared down .. back): a node that stops reporting is billed until it is
  declared down, not after; paused time is billed memory only;
- CPU and network used are deltas of cumulative counters between consecutive samples, spread
  over the periods the two samples span in proportion to time; a sample of another run, or
  a counter that went down, counts from zero at its run's start (a new cgroup, a new network
  namespace), never as a negative delta. What a counter measured is counted whole, across
  an outage too: a node declared down that comes back with its counters shows what its
  containers used (only what is billed by time stops at the outage);
- memory used is each sample's value held until the next one (the first one's back to its
  run's start, the last one's on to its run's end);
- requested is the limit (or the default request placement uses) x running time for CPU,
  x running and paused time for memory;
- a closed period's row is final: what is learned after it closed (a late sample, a run's
  end) goes to the earliest open period.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, fields, replace

US = 1_000_000
FOREVER = 1 << 62   # the end of a span that is still open, once cut at a moment


@dataclass(frozen=True)
class Span:
    start: int
    end: int | None = None      # None: still open


@dataclass(frozen=True)
class Limits:
    """The limits an instance runs with from ``at`` (None: none, the default request)."""
    at: int
    cpu_nanos: int | None = None     # nanocores (Docker's NanoCpus)
    memory: int | None = None        # bytes


@dataclass(frozen=True)
class Defaults:
    """What an instance without a limit requests: the configuration placement uses."""
    cpu_nanos: int
    memory: int


@dataclass(frozen=True)
class Lifecycle:
    runs: tuple[Span, ...] = ()
    pauses: tuple[Span, ...] = ()
    outages: tuple[Span, ...] = ()   # its node's: declared down .. back
    limits: tuple[Limits, ...] = ()  # in time order; the first applies from the start


@dataclass(frozen=True)
class Amounts:
    running_us: int = 0
    paused_us: int = 0
    cpu_used_ns: int = 0
    cpu_request: int = 0        # nanocore-µs
    memory_used: int = 0        # byte-µs
    memory_request: int = 0     # byte-µs
    net_rx: int = 0
    net_tx: int = 0

    def __add__(self, other: "Amounts") -> "Amounts":
        return Amounts(*(getattr(self, f) + getattr(other, f) for f in FIELDS))

    def __sub__(self, other: "Amounts") -> "Amounts":
        return Amounts(*(getattr(self, f) - getattr(other, f) for f in FIELDS))

    def clamped(self) -> "Amounts":
        """Never a negative amount (what was billed is not taken back)."""
        return Amounts(*(max(0, getattr(self, f)) for f in FIELDS))

    def any(self) -> bool:
        return any(getattr(self, f) for f in FIELDS)


FIELDS = tuple(f.name for f in fields(Amounts))
TIME_FIELDS = ("running_us", "paused_us", "cpu_request", "memory_request")
SAMPLED_FIELDS = ("cpu_used_ns", "memory_used", "net_rx", "net_tx")
COUNTERS = {"cpu_ns": "cpu_used_ns", "net_rx": "net_rx", "net_tx": "net_tx"}


@dataclass(frozen=True)
class Sample:
    at: int
    cpu_ns: int | None = None
    memory: int | None = None
    net_rx: int | None = None
    net_tx: int | None = None


@dataclass(frozen=True)
class Cursor:
    """Where the consumption of an instance's samples stands: its last sample's time, run
    and values, and how far its memory has been charged."""
    at: int
    run: int | None = None       # the start of that sample's run (None: no run known)
    cpu_ns: int | None = None
    net_rx: int | None = None
    net_tx: int | None = None
    memory: int | None = None
    memory_until: int | None = None


# --- spans ----------------------------------------------------------------------------------

def period_of(t: int, length: int) -> int:
    return t - t % length


def cut(spans, until: int) -> list[tuple[int, int]]:
    """The spans before ``until`` (open ones end there), sorted and merged."""
    out: list[tuple[int, int]] = []
    for span in sorted(spans, key=lambda s: s.start):
        end = until if span.end is None else min(span.end, until)
        if end <= span.start:
            continue
        if out and span.start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((span.start, end))
    return out


def minus(spans: list[tuple[int, int]], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``spans`` outside ``holes`` (both sorted and merged)."""
    out = []
    for start, end in spans:
        at = start
        for hole_start, hole_end in holes:
            if hole_end <= at or hole_start >= end:
                continue
            if hole_start > at:
                out.append((at, hole_start))
            at = max(at, hole_end)
            if at >= end:
                break
        if at < end:
            out.append((at, end))
    return out


def within(spans: list[tuple[int, int]], other: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return minus(spans, minus(spans, other))


def total(spans: list[tuple[int, int]]) -> int:
    return sum(end - start for start, end in spans)


def by_period(spans: list[tuple[int, int]], length: int):
    """Each span cut at period boundaries: (period start, start, end) pieces."""
    for start, end in spans:
        at = start
        while at < end:
            period = period_of(at, length)
            stop = min(end, period + length)
            yield period, at, stop
            at = stop


# --- time: runs, pauses, outages, limits -----------------------------------------------------

def active(life: Lifecycle, until: int) -> list[tuple[int, int]]:
    """When the instance ran (paused or not) and its node was not declared down."""
    return minus(cut(life.runs, until), cut(life.outages, until))


def limited(spans: list[tuple[int, int]], life: Lifecycle, defaults: Defaults):
    """(start, end, cpu nanocores, memory bytes) pieces: each span under the limits of its
    time (a missing limit is the default request)."""
    changes = sorted(life.limits, key=lambda lim: lim.at)
    moments = [lim.at for lim in changes]
    for start, end in spans:
        at = start
        while at < end:
            index = bisect_right(moments, at) - 1
            lim = changes[max(0, index)] if changes else Limits(at)
            following = changes[index + 1].at if index + 1 < len(changes) else FOREVER
            stop = min(end, following) if following > at else end
            cpu = defaults.cpu_nanos if lim.cpu_nanos is None else lim.cpu_nanos
            memory = defaults.memory if lim.memory is None else lim.memory
            yield at, stop, cpu, memory
            at = stop


def time_totals(life: Lifecycle, until: int, defaults: Defaults) -> Amounts:
    """Running and paused time and what was requested, from the first run to ``until``."""
    ran = active(life, until)
    paused = within(ran, cut(life.pauses, until))
    running = minus(ran, paused)
    cpu = sum((end - start) * c for start, end, c, _ in limited(running, life, defaults))
    memory = sum((end - start) * m for start, end, _, m in limited(ran, life, defaults))
    return Amounts(running_us=total(running), paused_us=total(paused), cpu_request=cpu,
                   memory_request=memory)


# --- samples: counters and memory --------------------------------------------------------------

def spread(start: int, end: int, amount: int, length: int) -> dict[int, int]:
    """``amount`` over [start, end) in proportion to time, by period start. Exact: cumulative
    shares are floored, so the parts add up to the whole."""
    if amount == 0:
        return {}
    if end <= start:
        return {period_of(start, length): amount}
    out: dict[int, int] = {}
    share = lambda t: amount * (t - start) // (end - start)  # noqa: E731 - one formula
    for period, a, b in by_period([(start, end)], length):
        out[period] = out.get(period, 0) + share(b) - share(a)
    return out


def held(start: int, end: int, value: int, length: int,
         ran: list[tuple[int, int]]) -> dict[int, int]:
    """``value`` (bytes) held over [start, end) while the instance ran: byte-µs by period."""
    out: dict[int, int] = {}
    for period, a, b in by_period(within([(start, end)], ran), length):
        out[period] = out.get(period, 0) + value * (b - a)
    return out


def run_of(life: Lifecycle, at: int) -> Span | None:
    """The run a sample taken at ``at`` belongs to: the last one started by then."""
    started = [run for run in life.runs if run.start <= at]
    return max(started, key=lambda run: run.start) if started else None


def _add(rows: dict[int, Amounts], parts: dict[int, int], field: str) -> None:
    for period, amount in parts.items():
        if amount:
            base = rows.get(period, Amounts())
            rows[period] = replace(base, **{field: getattr(base, field) + amount})


def _tail(cursor: Cursor, life: Lifecycle, length: int, ran, rows) -> Cursor:
    """The memory of a run that ended after its last sample, up to its end."""
    run = next((r for r in life.runs if r.start == cursor.run), None)
    if run is None or run.end is None or cursor.memory is None:
        return cursor
    since = cursor.memory_until if cursor.memory_until is not None else cursor.at
    if since < run.end:
        _add(rows, held(since, run.end, cursor.memory, length, ran), "memory_used")
        cursor = replace(cursor, memory_until=run.end)
    return cursor


def _origin(cursor: Cursor | None, run: Span | None, at: int) -> int:
    """Where a sample's counters started from zero: its run's start (not before what was
    already consumed); without a known run, the last sample (or the sample itself)."""
    if run is None:
        return cursor.at if cursor is not None else at
    return run.start if cursor is None else max(run.start, cursor.at)


def _take(cursor: Cursor | None, s: Sample, life: Lifecycle, length: int, ran,
          rows: dict[int, Amounts]) -> Cursor:
    """One new sample: its counters' deltas and the memory held up to it, into ``rows``."""
    run = run_of(life, s.at)
    run_start = run.start if run else None
    fresh = cursor is None or run_start != cursor.run
    if cursor is not None and fresh:
        cursor = _tail(cursor, life, length, ran, rows)
    origin = _origin(cursor, run, s.at)
    values = {}
    for counter, field in COUNTERS.items():
        value = getattr(s, counter)
        before = None if fresh else getattr(cursor, counter)
        values[counter] = before if value is None else value
        if value is None:
            continue
        if before is not None and value >= before:
            _add(rows, spread(cursor.at, s.at, value - before, length), field)
        else:  # a new run, or the counter went back: a new cgroup counting from zero
            start = origin if fresh else cursor.at
            _add(rows, spread(start, s.at, value, length), field)
    memory = None if fresh else cursor.memory
    memory_until = None if fresh else cursor.memory_until
    if s.memory is not None:
        if memory is None:   # the first value of a run holds back to where it started
            since = origin if fresh else cursor.at
            _add(rows, held(since, s.at, s.memory, length, ran), "memory_used")
        elif (memory_until or cursor.at) <= s.at:   # each value holds until the next one
            since = max(cursor.at, memory_until or cursor.at)
            _add(rows, held(since, s.at, memory, length, ran), "memory_used")
        else:  # the run's end was charged with the older value: this one holds from here
            _add(rows, held(s.at, memory_until, s.memory - memory, length, ran), "memory_used")
        memory, memory_until = s.memory, max(s.at, memory_until or s.at)
    return Cursor(at=s.at, run=run_start, memory=memory, memory_until=memory_until, **values)


def consume(cursor: Cursor | None, samples, life: Lifecycle, length: int,
            until: int) -> tuple[Cursor | None, dict[int, Amounts]]:
    """Take in the samples newer than ``cursor`` (up to ``until``): their counters' deltas
    and the memory they hold, by period start. A sample no newer than the cursor adds
    nothing: the counters are cumulative, and a later sample already covers it."""
    rows: dict[int, Amounts] = {}
    ran = active(life, FOREVER)
    for s in sorted(samples, key=lambda s: s.at):
        if s.at > until or (cursor is not None and s.at <= cursor.at):
            continue
        cursor = _take(cursor, s, life, length, ran, rows)
    if cursor is not None:
        cursor = _tail(cursor, life, length, ran, rows)
    return cursor, rows
