"""core.metering and core.rollup, properties: splits are exact, no counter delta is lost or
counted twice whatever the sampling and the order samples arrive in, time adds up over any
period length, and a closed period's amounts never change, whatever arrives after."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.metering import (Amounts, Defaults, Lifecycle, Limits, Sample, Span, consume,
                           period_of, spread, time_totals)
from core.rollup import Window, roll

SETTINGS = settings(max_examples=100, deadline=None)
DEFAULTS = Defaults(cpu_nanos=100_000_000, memory=1 << 26)
lengths = st.integers(1, 500)


@st.composite
def lifecycles(draw, max_runs=4):
    """Runs one after the other (the last maybe still open), pauses inside them, outages of
    the node, limits changed at any moment."""
    at, runs, pauses = draw(st.integers(0, 200)), [], []
    count = draw(st.integers(1, max_runs))
    for index in range(count):
        length = draw(st.integers(1, 400))
        still_open = index == count - 1 and draw(st.booleans())
        runs.append(Span(at, None if still_open else at + length))
        if draw(st.booleans()):
            p = draw(st.integers(at, at + length - 1))
            pauses.append(Span(p, min(at + length, p + draw(st.integers(1, 50)))))
        at += length + draw(st.integers(0, 100))
    outages = [Span(a, a + draw(st.integers(1, 80)))
               for a in draw(st.lists(st.integers(0, at), max_size=2))]
    limits = [Limits(draw(st.integers(0, at)),
                     draw(st.one_of(st.none(), st.integers(1, 4 * 10 ** 9))),
                     draw(st.one_of(st.none(), st.integers(1, 1 << 30))))
              for _ in range(draw(st.integers(0, 3)))]
    return Lifecycle(tuple(runs), tuple(pauses), tuple(outages),
                     tuple(sorted(limits, key=lambda x: x.at)))


@st.composite
def sampled(draw):
    """A lifecycle without outages, and samples in its runs whose counters start from zero
    at each run's start and never go down within it; with the counters' true totals."""
    life = draw(lifecycles())
    life = Lifecycle(life.runs, life.pauses, (), life.limits)
    samples, totals = [], {"cpu_ns": 0, "net_rx": 0}
    for run in life.runs:
        end = run.end if run.end is not None else run.start + 300
        times = sorted(set(draw(st.lists(st.integers(run.start, end - 1), max_size=6))))
        cpu = rx = 0
        for t in times:
            cpu += draw(st.integers(0, 10 ** 6))
            rx += draw(st.integers(0, 10 ** 4))
            samples.append(Sample(t, cpu_ns=cpu, memory=draw(st.integers(0, 10 ** 6)),
                                  net_rx=rx))
        totals["cpu_ns"] += cpu
        totals["net_rx"] += rx
    return life, samples, totals


@SETTINGS
@given(st.integers(-1000, 1000), st.integers(0, 2000), st.integers(0, 10 ** 12), lengths)
def test_spread_parts_add_up_exactly_and_stay_in_their_span(start, duration, amount, length):
    parts = spread(start, start + duration, amount, length)
    assert sum(parts.values()) == amount
    assert all(v >= 0 for v in parts.values())
    assert all(period_of(start, length) <= p <= max(start, start + duration - 1) for p in parts)


@SETTINGS
@given(st.integers(0, 1000), st.integers(1, 2000), st.integers(0, 10 ** 9), lengths,
       st.integers(1, 2000))
def test_spread_splits_the_same_wherever_the_span_is_cut(start, duration, amount, length,
                                                        cut_at):
    """What [a, c) gives a period is what [a, b) and [b, c) give it, within the floor's
    one unit per piece."""
    middle = start + min(cut_at, duration)
    whole = spread(start, start + duration, amount, length)
    first = amount * (middle - start) // duration
    halves = spread(start, middle, first, length)
    for p, v in spread(middle, start + duration, amount - first, length).items():
        halves[p] = halves.get(p, 0) + v
    assert sum(halves.values()) == sum(whole.values()) == amount
    assert all(abs(halves.get(p, 0) - whole.get(p, 0)) <= 2 for p in set(whole) | set(halves))


@SETTINGS
@given(lifecycles(), st.integers(0, 3000), st.integers(0, 3000))
def test_time_only_grows_and_running_plus_paused_is_the_time_up(life, t1, t2):
    early, late = sorted((t1, t2))
    a, b = time_totals(life, early, DEFAULTS), time_totals(life, late, DEFAULTS)
    assert all(getattr(b - a, f) >= 0 for f in ("running_us", "paused_us", "cpu_request",
                                                "memory_request"))
    assert b.running_us + b.paused_us <= max(0, late - min(r.start for r in life.runs))


@SETTINGS
@given(lifecycles(), lengths, st.integers(0, 3000))
def test_periods_of_any_length_add_up_to_the_whole(life, length, now):
    w = Window(length, period_of(-10, length), period_of(now, length), now)
    rolled = roll(life, None, Amounts(), [], DEFAULTS, w)
    whole = time_totals(life, now, DEFAULTS)
    summed = sum(rolled.time_rows.values(), Amounts())
    assert summed == whole
    assert rolled.billed == time_totals(life, w.closing_until, DEFAULTS)


@SETTINGS
@given(sampled(), lengths)
def test_no_counter_delta_is_lost_or_counted_twice(case, length):
    life, samples, totals = case
    _, rows = consume(None, samples, life, length, 10 ** 6)
    assert sum(r.cpu_used_ns for r in rows.values()) == totals["cpu_ns"]
    assert sum(r.net_rx for r in rows.values()) == totals["net_rx"]


@SETTINGS
@given(sampled(), lengths, st.data())
def test_consuming_in_any_batches_is_consuming_at_once(case, length, data):
    life, samples, _ = case
    _, whole = consume(None, samples, life, length, 10 ** 6)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(samples)), max_size=3)))
    cursor, merged = None, {}
    for cut_at in cuts + [len(samples)]:
        cursor, rows = consume(cursor, samples[:cut_at], life, length, 10 ** 6)
        for p, a in rows.items():
            merged[p] = merged.get(p, Amounts()) + a
    # a run's end held with an older value is corrected by the sample that comes after
    assert {p: a for p, a in merged.items() if a.any()} == whole


@SETTINGS
@given(sampled(), st.integers(20, 200), st.data())
def test_closed_periods_never_change_and_late_samples_are_not_lost(case, length, data):
    """Runs of the rollup at increasing moments, the samples arriving in any order and
    late: what a period was given when it closed stays; at the end every delta is in."""
    life, samples, totals = case
    # one node's sampler: in order, each sample written up to 3 periods late
    arrival, last = {}, 0
    for s in samples:
        last = arrival[s] = max(last, s.at + data.draw(st.integers(0, 3 * length)))
    horizon = max([s.at for s in samples] + [r.end or r.start + 300 for r in life.runs]) \
        + 4 * length
    moments = sorted(set(data.draw(st.lists(st.integers(0, horizon), max_size=8)) + [horizon]))
    rows, closed, cursor, billed, closed_until, since = {}, {}, None, Amounts(), -length, -length
    for now in moments:
        w = Window.at(now, length, data.draw(st.integers(0, length)), closed_until, since)
        known = [s for s in samples if arrival[s] <= now]
        rolled = roll(life, cursor, billed, known, DEFAULTS, w)
        for p in list(rows):
            if p >= w.closed_until:   # open rows: time amounts recomputed
                rows[p] = Amounts(**{**vars(rows[p]), "running_us": 0, "paused_us": 0,
                                     "cpu_request": 0, "memory_request": 0})
        for p, a in list(rolled.time_rows.items()) + list(rolled.sample_rows.items()):
            assert p not in closed, "a closed period was given more"
            rows[p] = rows.get(p, Amounts()) + a
        for p in [p for p in rows if p < w.closing_until and p not in closed]:
            closed[p] = rows[p]
        cursor, billed, closed_until = rolled.cursor, rolled.billed, w.closing_until
        assert all(rows[p] == a for p, a in closed.items())
    # the last run saw every sample (arrivals are before the horizon)
    assert sum(a.cpu_used_ns for a in rows.values()) == totals["cpu_ns"]


@SETTINGS
@given(lifecycles(), lengths, st.integers(0, 3000), st.integers(0, 3000))
def test_nothing_from_before_metering_started_is_billed(life, length, start, now):
    """The first run of a period length starts metering: an instance running since before
    is billed from there on, as if it had started then."""
    first = Window.at(start, length, 0)
    assert first.since == first.closed_until == period_of(start, length)
    later = Window.at(max(now, start), length, 0, first.closed_until, first.since)
    rolled = roll(life, None, Amounts(), [], DEFAULTS, later)
    since = first.since
    clipped = Lifecycle(tuple(Span(max(r.start, since), r.end) for r in life.runs
                              if r.end is None or r.end > since), life.pauses, life.outages,
                        life.limits)
    assert sum(rolled.time_rows.values(), Amounts()).running_us == time_totals(
        clipped, max(now, start), DEFAULTS).running_us
