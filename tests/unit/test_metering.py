"""core.metering, core.rollup and core.billing by example: spans, exact splits, running and
paused time under limits and outages, counters with gaps and resets, memory held, closing
periods with late data, node capacity, and the billing columns."""
from __future__ import annotations

import pytest

from core.billing import Prices, cost, figures, idle
from core.metering import (US, Amounts, Cursor, Defaults, Lifecycle, Limits, Sample, Span,
                           consume, cut, minus, period_of, run_of, spread, time_totals, within)
from core.rollup import Window, capacity_rows, roll

S = US                       # one second in µs
HALF = 500_000_000           # 0.5 core in nanocores
MIB = 1 << 20
DEFAULTS = Defaults(cpu_nanos=100_000_000, memory=64 * MIB)   # 0.1 core, 64 MiB


def life(*runs, pauses=(), outages=(), limits=(Limits(0, HALF, 128 * MIB),)) -> Lifecycle:
    return Lifecycle(tuple(Span(a * S, None if b is None else b * S) for a, b in runs),
                     tuple(Span(a * S, None if b is None else b * S) for a, b in pauses),
                     tuple(Span(a * S, None if b is None else b * S) for a, b in outages),
                     tuple(limits))


def cpu_samples(start, stop, step, rate=0.5, origin=None, memory=1000):
    """Samples of a counter burning ``rate`` cores since ``origin`` (default: start)."""
    origin = start if origin is None else origin
    return [Sample(at=t * S, cpu_ns=round((t - origin) * rate * 1e9), memory=memory,
                   net_rx=100 * (t - origin), net_tx=10 * (t - origin))
            for t in range(start + step, stop + 1, step)]


# --- spans -----------------------------------------------------------------------------------

def test_spans_cut_merge_and_subtract():
    spans = [Span(10, 20), Span(15, 30), Span(40, None)]
    assert cut(spans, 50) == [(10, 30), (40, 50)]
    assert cut(spans, 12) == [(10, 12)]
    assert cut([Span(5, 5)], 10) == []
    assert minus([(0, 100)], [(10, 20), (50, 200)]) == [(0, 10), (20, 50)]
    assert minus([(0, 10)], [(0, 10)]) == []
    assert within([(0, 100)], [(10, 20), (90, 120)]) == [(10, 20), (90, 100)]


def test_periods_are_aligned_to_the_epoch():
    assert period_of(3 * 3600 * S + 5, 3600 * S) == 3 * 3600 * S
    assert period_of(0, 60 * S) == 0
    assert period_of(-1, 60 * S) == -60 * S


# --- spread: exact splits ---------------------------------------------------------------------

def test_spread_across_boundaries_is_proportional_and_exact():
    parts = spread(15 * S, 45 * S, 3000, 20 * S)
    assert parts == {0: 500, 20 * S: 2000, 40 * S: 500}
    odd = spread(1, 8, 10, 3)
    assert sum(odd.values()) == 10 and set(odd) == {0, 3, 6}


def test_spread_of_an_instant_goes_to_its_period():
    assert spread(25 * S, 25 * S, 7, 20 * S) == {20 * S: 7}
    assert spread(0, 10, 0, 5) == {}


def test_what_a_counter_measured_across_an_outage_is_counted_whole():
    # the node was declared down 10..30 s and came back: its counter says what ran
    runs = life((0, None), outages=[(10, 30)])
    _, rows = consume(None, [Sample(5 * S, cpu_ns=500), Sample(40 * S, cpu_ns=4000)], runs,
                      100 * S, 100 * S)
    assert rows[0].cpu_used_ns == 4000
    assert time_totals(runs, 40 * S, DEFAULTS).running_us == 20 * S


# --- time: runs, pauses, outages, limits ------------------------------------------------------

def test_running_time_and_requests_of_one_run():
    t = time_totals(life((10, 70)), 100 * S, DEFAULTS)
    assert t.running_us == 60 * S and t.paused_us == 0
    assert t.cpu_request == HALF * 60 * S          # 0.5 core x 60 s
    assert t.memory_request == 128 * MIB * 60 * S


def test_an_open_run_counts_until_the_moment_asked():
    assert time_totals(life((10, None)), 25 * S, DEFAULTS).running_us == 15 * S
    assert time_totals(life((10, None)), 5 * S, DEFAULTS).running_us == 0


def test_paused_time_is_billed_memory_only():
    t = time_totals(life((0, 100), pauses=[(20, 50)]), 100 * S, DEFAULTS)
    assert (t.running_us, t.paused_us) == (70 * S, 30 * S)
    assert t.cpu_request == HALF * 70 * S
    assert t.memory_request == 128 * MIB * 100 * S


def test_without_limits_the_default_request_applies():
    t = time_totals(life((0, 10), limits=()), 10 * S, DEFAULTS)
    assert t.cpu_request == DEFAULTS.cpu_nanos * 10 * S
    assert t.memory_request == DEFAULTS.memory * 10 * S
    one = time_totals(life((0, 10), limits=[Limits(0, HALF, None)]), 10 * S, DEFAULTS)
    assert one.memory_request == DEFAULTS.memory * 10 * S


def test_limits_changed_live_apply_from_their_moment():
    changed = life((0, 100), limits=[Limits(0, HALF, 100), Limits(40 * S, 2 * HALF, 300)])
    t = time_totals(changed, 100 * S, DEFAULTS)
    assert t.cpu_request == HALF * 40 * S + 2 * HALF * 60 * S
    assert t.memory_request == 100 * 40 * S + 300 * 60 * S
    # limits first seen after the start apply from the start
    late = life((0, 10), limits=[Limits(5 * S, HALF, 100)])
    assert time_totals(late, 10 * S, DEFAULTS).cpu_request == HALF * 10 * S


def test_a_node_down_stops_the_billing_until_it_is_back():
    t = time_totals(life((0, None), outages=[(30, 50)]), 100 * S, DEFAULTS)
    assert t.running_us == 80 * S
    still_down = time_totals(life((0, None), outages=[(30, None)]), 100 * S, DEFAULTS)
    assert still_down.running_us == 30 * S and still_down.cpu_request == HALF * 30 * S


def test_restarts_are_runs_of_their_own():
    t = time_totals(life((0, 10), (12, 20), (25, None)), 30 * S, DEFAULTS)
    assert t.running_us == (10 + 8 + 5) * S


# --- samples: counters and memory -------------------------------------------------------------

def test_counter_deltas_cover_every_gap_from_the_run_start():
    runs = life((10, 70))
    cursor, rows = consume(None, cpu_samples(10, 60, 5), runs, 20 * S, 100 * S)
    assert sum(r.cpu_used_ns for r in rows.values()) == round(50 * 0.5e9)
    assert rows[0].cpu_used_ns == round(10 * 0.5e9)       # 10 s..20 s of [0, 20)
    assert rows[20 * S].cpu_used_ns == round(20 * 0.5e9)
    assert sum(r.net_rx for r in rows.values()) == 100 * 50
    assert cursor.at == 60 * S and cursor.cpu_ns == round(50 * 0.5e9)


def test_consuming_in_pieces_equals_consuming_at_once():
    runs = life((10, 70))
    samples = cpu_samples(10, 60, 5)
    _, whole = consume(None, samples, runs, 20 * S, 100 * S)
    cursor, first = consume(None, samples[:4], runs, 20 * S, 100 * S)
    cursor, second = consume(cursor, samples, runs, 20 * S, 100 * S)   # old ones skipped
    merged = {p: first.get(p, Amounts()) + second.get(p, Amounts()) for p in whole}
    assert merged == whole


def test_a_sample_no_newer_than_the_cursor_adds_nothing():
    runs = life((0, None))
    cursor, _ = consume(None, [Sample(10 * S, cpu_ns=5000)], runs, 20 * S, 100 * S)
    again, rows = consume(cursor, [Sample(5 * S, cpu_ns=4000), Sample(10 * S, cpu_ns=5000)],
                          runs, 20 * S, 100 * S)
    assert rows == {} and again == cursor


def test_samples_after_until_wait_for_a_later_run():
    cursor, rows = consume(None, [Sample(50 * S, cpu_ns=10)], life((0, None)), 20 * S, 40 * S)
    assert cursor is None and rows == {}


def test_a_new_run_counts_from_zero_at_its_start_not_as_a_negative_delta():
    runs = life((0, 10), (20, None))
    samples = [Sample(5 * S, cpu_ns=3000), Sample(25 * S, cpu_ns=1000), Sample(30 * S, cpu_ns=2000)]
    _, rows = consume(None, samples, runs, 100 * S, 100 * S)
    assert rows[0].cpu_used_ns == 3000 + 1000 + 1000
    # a new run whose counter is already above the old one is still counted whole
    _, rows = consume(None, [Sample(5 * S, cpu_ns=3000), Sample(25 * S, cpu_ns=4000)], runs,
                      10 * S, 100 * S)
    assert rows[0].cpu_used_ns == 3000 and rows[20 * S].cpu_used_ns == 4000


def test_a_counter_that_goes_back_within_a_run_is_a_reset():
    samples = [Sample(10 * S, cpu_ns=5000), Sample(20 * S, cpu_ns=200)]
    _, rows = consume(None, samples, life((0, None)), 100 * S, 100 * S)
    assert rows[0].cpu_used_ns == 5200


def test_memory_is_each_sample_held_from_the_run_start_to_its_end():
    samples = [Sample(10 * S, memory=100), Sample(20 * S, memory=300)]
    cursor, rows = consume(None, samples, life((5, 30)), 100 * S, 100 * S)
    # 100 back to the start (5..10), 100 held to the next sample (10..20), 300 to the end
    assert rows[0].memory_used == 100 * 5 * S + 100 * 10 * S + 300 * 10 * S
    assert cursor.memory_until == 30 * S


def test_memory_is_held_through_pauses_but_not_outages():
    samples = [Sample(10 * S, memory=100)]
    _, rows = consume(None, samples, life((0, 40), pauses=[(10, 20)], outages=[(30, 35)]),
                      100 * S, 100 * S)
    assert rows[0].memory_used == 100 * 35 * S


def test_a_sample_without_a_known_run_counts_where_it_is():
    _, rows = consume(None, [Sample(25 * S, cpu_ns=700)], Lifecycle(), 20 * S, 100 * S)
    assert rows == {20 * S: Amounts(cpu_used_ns=700)}


def test_run_of_is_the_last_run_started():
    runs = life((0, 10), (20, None))
    assert run_of(runs, 15 * S).start == 0 and run_of(runs, 20 * S).start == 20 * S
    assert run_of(runs, -1) is None


# --- closing periods ---------------------------------------------------------------------------

def test_window_of_a_first_run_closes_nothing_and_starts_metering():
    w = Window.at(125 * S, 20 * S, 10 * S)
    assert (w.closed_until, w.closing_until, w.since) == (100 * S, 100 * S, 100 * S)
    w = Window.at(125 * S, 20 * S, 10 * S, 60 * S, 40 * S)
    assert (w.closed_until, w.closing_until, w.since) == (60 * S, 100 * S, 40 * S)
    assert list(w.periods_from(0)) == [60 * S, 80 * S, 100 * S, 120 * S]
    with pytest.raises(ValueError):
        Window.at(125 * S, 20 * S, 10 * S, 60 * S)


def test_an_instance_running_before_metering_started_is_billed_from_then():
    runs = life((0, None))
    w = Window(20 * S, 40 * S, 40 * S, 70 * S, since=40 * S)
    rolled = roll(runs, None, Amounts(), cpu_samples(0, 70, 10), DEFAULTS, w)
    assert {p: a.running_us for p, a in rolled.time_rows.items()} == {40 * S: 20 * S,
                                                                       60 * S: 10 * S}
    assert sorted(rolled.sample_rows) == [40 * S, 60 * S]
    assert rolled.sample_rows[40 * S].cpu_used_ns == round(20 * 0.5e9)


def test_closing_gives_each_period_its_own_amounts():
    runs = life((10, 70))
    rolled = roll(runs, None, Amounts(), cpu_samples(10, 70, 5), DEFAULTS,
                  Window(20 * S, 0, 80 * S, 100 * S))
    assert {p: a.running_us for p, a in rolled.time_rows.items()} == {
        0: 10 * S, 20 * S: 20 * S, 40 * S: 20 * S, 60 * S: 10 * S}
    assert rolled.billed.running_us == 60 * S
    assert sum(a.cpu_used_ns for a in rolled.sample_rows.values()) == round(60 * 0.5e9)


def test_open_periods_are_provisional_and_not_billed_yet():
    runs = life((10, None))
    rolled = roll(runs, None, Amounts(), [], DEFAULTS, Window(20 * S, 0, 20 * S, 50 * S))
    assert {p: a.running_us for p, a in rolled.time_rows.items()} == {
        0: 10 * S, 20 * S: 20 * S, 40 * S: 10 * S}
    assert rolled.billed.running_us == 10 * S


def test_what_is_learned_late_goes_to_the_earliest_open_period():
    runs = life((10, None))
    first = roll(runs, None, Amounts(), cpu_samples(10, 30, 5), DEFAULTS,
                 Window(20 * S, 0, 20 * S, 35 * S))
    # [0, 20) closed; now a sample of 15..18 s comes in late (a new counter value), and the
    # container is found to have run since 5 s, not 10 s
    late = [Sample(38 * S, cpu_ns=round(28 * 0.5e9))]
    rolled = roll(life((5, None)), first.cursor, first.billed, late, DEFAULTS,
                  Window(20 * S, 20 * S, 20 * S, 40 * S))
    assert 0 not in rolled.time_rows and 0 not in rolled.sample_rows
    assert rolled.time_rows[20 * S].running_us == 20 * S + 5 * S   # its own 20 s, 5 s late
    closed_before = [Sample(19 * S, cpu_ns=round(20 * 0.5e9))]
    moved = roll(runs, first.cursor, first.billed, closed_before, DEFAULTS,
                 Window(20 * S, 40 * S, 40 * S, 45 * S))
    assert moved.sample_rows == {}  # older than the cursor: nothing new


def test_a_late_sample_after_the_cursor_lands_in_the_open_period():
    runs = life((0, 30))
    first = roll(runs, None, Amounts(), [Sample(10 * S, cpu_ns=1000)], DEFAULTS,
                 Window(20 * S, 0, 0, 25 * S))
    late = roll(runs, first.cursor, first.billed, [Sample(18 * S, cpu_ns=1800)], DEFAULTS,
                Window(20 * S, 20 * S, 20 * S, 26 * S))
    assert late.sample_rows == {20 * S: Amounts(cpu_used_ns=800, memory_used=0)}


def test_time_learned_to_be_shorter_is_never_taken_back():
    # 30 s were billed while it seemed to run; its end, learned now, says 10 s
    billed = time_totals(life((0, 30)), 30 * S, DEFAULTS)
    rolled = roll(life((0, 10)), None, billed, [], DEFAULTS,
                  Window(20 * S, 20 * S, 40 * S, 45 * S))
    assert rolled.time_rows == {} and rolled.billed == billed


def test_node_capacity_counts_the_time_it_was_up():
    w = Window(20 * S, 0, 20 * S, 50 * S)
    rows = capacity_rows(5 * S, [Span(25 * S, 30 * S)], 2 * 10 ** 9, 1000, w)
    assert {p: c.up_us for p, c in rows.items()} == {0: 15 * S, 20 * S: 15 * S, 40 * S: 10 * S}
    assert rows[0].cpu == 15 * S * 2 * 10 ** 9 and rows[40 * S].memory == 1000 * 10 * S


# --- billing columns ---------------------------------------------------------------------------

SUMS = {"running_us": 60 * S, "paused_us": 20 * S, "cpu_used_ns": 27 * 10 ** 9,
        "cpu_request": HALF * 60 * S, "cpu_billable": HALF * 60 * S,
        "memory_used": 10 * MIB * 80 * S, "memory_request": 128 * MIB * 80 * S,
        "memory_billable": 128 * MIB * 80 * S, "net_rx": 5, "net_tx": 7}


def test_figures_in_seconds_cores_and_bytes():
    row = figures(SUMS, Prices())
    assert row["ContainerSeconds"] == 60 and row["PausedSeconds"] == 20
    assert row["CPUCoreUsageSeconds"] == 27 and row["CPUCoreRequestSeconds"] == 30
    assert row["CPUCoreSeconds"] == 30 and row["CPUCoreUsageAverage"] == 0.45
    assert row["CPUCoreRequestAverage"] == 0.5
    assert row["RAMBytesRequestAverage"] == 128 * MIB and row["RAMBytesUsageAverage"] == 10 * MIB
    assert row["RAMByteSeconds"] == 128 * MIB * 80
    assert (row["NetworkReceiveBytes"], row["NetworkTransferBytes"]) == (5, 7)
    assert row["Cost"] is None


def test_an_instance_that_never_ran_has_no_averages():
    empty = {k: 0 for k in SUMS}
    assert figures(empty, Prices())["CPUCoreUsageAverage"] == 0.0


def test_cost_from_prices_per_core_hour_and_gib_hour():
    assert cost(3600, 1024 ** 3 * 3600, Prices(0.04, 0.005)) == pytest.approx(0.045)
    assert cost(3600, 0, Prices(cpu_core_hour=1.0)) == 1.0
    assert figures(SUMS, Prices(3600.0, None))["Cost"] == 30.0


def test_idle_is_capacity_nothing_reserved():
    out = idle({"cpu": 2 * 10 ** 15 * 10, "memory": 100 * S}, {"cpu_request": 5 * 10 ** 15,
                                                                "memory_request": 150 * S})
    assert out == {"CapacityCPUCoreSeconds": 20, "IdleCPUCoreSeconds": 15,
                   "CapacityRAMByteSeconds": 100, "IdleRAMByteSeconds": 0.0}
