"""The usage rollup (the scheduler sends it every HARBORMASTER_USAGE_ROLLUP_INTERVAL): one
run per period length at a time, in one transaction. It gathers each recent instance's
lifecycle (runs, pauses, limits, its node's outages), cursor and new samples, lets
core.rollup say what each period gets, writes that, closes the periods that ended, sums
the hours into days and prunes what is past its retention.

``rollup(cfg, now, periods, close_delay)`` takes the moment and the period lengths as
arguments: the tests run it with short periods (its rows are kept apart by length)."""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import config
from core.metering import US, Amounts, Cursor, Defaults, Lifecycle, Limits, Sample, Span
from core.placement import node_state
from core.rollup import Rolled, Window, capacity_rows, roll
from db import nodes, pool, usage_rollup as store

log = logging.getLogger("harbormaster.metering")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# a change to an instance's lifecycle committed while a run was reading it is looked at by
# the next run: observations are short transactions, a minute covers them
CHANGE_MARGIN = timedelta(minutes=1)


def micros(at: datetime | None) -> int | None:
    return None if at is None else (at - EPOCH) // timedelta(microseconds=1)


def moment(us: int | None) -> datetime | None:
    return None if us is None else EPOCH + timedelta(microseconds=us)


def defaults(cfg: config.Config) -> Defaults:
    """What an instance without limits requests: what placement reserves for it."""
    return Defaults(cpu_nanos=round(cfg.default_cpu_request * 1e9),
                    memory=cfg.default_memory_request)


def rollup(cfg: config.Config, now: datetime | None = None, periods: tuple | None = None,
           close_delay: float | None = None) -> dict:
    """One run: the base period (the first length) from the raw data, then the longer ones
    as sums of it. Returns what it did (its window included, for the tests)."""
    started = time.perf_counter()
    now = now or datetime.now(timezone.utc)
    base, *longer = periods or cfg.usage_periods
    delay = cfg.usage_close_delay if close_delay is None else close_delay
    with pool.connection() as conn:
        if not store.lock(conn, base):
            return {"skipped": f"another rollup of {base} s periods is running"}
        stored = store.progress(conn, base) or {}
        w = Window.at(micros(now), base * US, round(delay * US),
                      micros(stored.get("closed_until")), micros(stored.get("metered_since")))
        instances = instances_rolled(conn, cfg, base, w, now, stored.get("ran_at"))
        write_capacity(conn, cfg, base, w)
        closed = store.close(conn, base, moment(w.closing_until))
        store.set_closed_until(conn, base, moment(w.closing_until))
        for length in longer:
            since = (store.progress(conn, length) or {}).get("closed_until") or moment(
                w.closed_until - w.closed_until % (length * US))
            until = moment(w.closing_until - w.closing_until % (length * US))
            store.aggregate(conn, base, length, since, until)
            store.set_closed_until(conn, length, max(since, until))
        prune(conn, cfg, base, longer, now)
    return {"period": base, "instances": instances, "closed_rows": closed,
            "closed_until": moment(w.closed_until), "closing_until": moment(w.closing_until),
            "seconds": round(time.perf_counter() - started, 3)}


def instances_rolled(conn, cfg: config.Config, base: int, w: Window, now: datetime,
                     last_run: datetime | None) -> int:
    """Roll the instances that may have changed since the last run; how many."""
    changed_since = (last_run or EPOCH + timedelta(days=1)) - CHANGE_MARGIN
    keys = [(r["node"], r["docker_id"]) for r in store.candidates(
        conn, base, now - timedelta(seconds=cfg.usage_late_window), changed_since,
        moment(w.closing_until), now)]
    if not keys:
        store.write_rows(conn, base, keys, [])
        return 0
    lives = lifecycles(conn, keys)
    cursors, billed = states(conn, base, keys)
    samples = defaultdict(list)
    for r in store.samples(conn, base, keys, now):
        samples[(r["node"], r["docker_id"])].append(Sample(
            micros(r["at"]), r["cpu_ns"], r["memory_bytes"], r["net_rx"], r["net_tx"]))
    wanted = defaults(cfg)
    rows, state_rows = [], []
    for key in keys:
        rolled = roll(lives[key], cursors.get(key), billed.get(key, Amounts()), samples[key],
                      wanted, w)
        rows.extend(row_tuples(key, rolled))
        state_rows.append(state_tuple(key, rolled))
    store.write_rows(conn, base, keys, rows)
    store.write_states(conn, base, state_rows)
    return len(keys)


def lifecycles(conn, keys) -> dict[tuple, Lifecycle]:
    runs, pauses, limits = defaultdict(list), defaultdict(list), defaultdict(list)
    for r in store.spans(conn, keys):
        span = Span(micros(r["started_at"]), micros(r["ended_at"]))
        (runs if r["kind"] == "run" else pauses)[(r["node"], r["docker_id"])].append(span)
    for r in store.limits(conn, keys):
        limits[(r["node"], r["docker_id"])].append(Limits(micros(r["at"]), r["cpu_nanos"],
                                                          r["memory"]))
    outages = defaultdict(list)
    for r in store.outages(conn):
        outages[r["node"]].append(Span(micros(r["down_at"]), micros(r["up_at"])))
    return {key: Lifecycle(tuple(runs[key]), tuple(pauses[key]), tuple(outages[key[0]]),
                           tuple(limits[key])) for key in keys}


def states(conn, base: int, keys) -> tuple[dict, dict]:
    cursors, billed = {}, {}
    for r in store.states(conn, base, keys):
        key = (r["node"], r["docker_id"])
        if r["cursor_at"] is not None:
            cursors[key] = Cursor(micros(r["cursor_at"]), micros(r["cursor_run"]), r["cpu_ns"],
                                  r["net_rx"], r["net_tx"], r["memory"],
                                  micros(r["memory_until"]))
        billed[key] = Amounts(running_us=r["billed_running_us"],
                              paused_us=r["billed_paused_us"],
                              cpu_request=int(r["billed_cpu_request"]),
                              memory_request=int(r["billed_memory_request"]))
    return cursors, billed


def row_tuples(key: tuple, rolled: Rolled) -> list[tuple]:
    periods = sorted(set(rolled.time_rows) | set(rolled.sample_rows))
    out = []
    for period in periods:
        t = rolled.time_rows.get(period, Amounts())
        s = rolled.sample_rows.get(period, Amounts())
        out.append((moment(period), *key, t.running_us, t.paused_us, t.cpu_request,
                    t.memory_request, s.cpu_used_ns, s.memory_used, s.net_rx, s.net_tx))
    return out


def state_tuple(key: tuple, rolled: Rolled) -> tuple:
    c, b = rolled.cursor, rolled.billed
    cursor = (moment(c.at), moment(c.run), c.cpu_ns, c.net_rx, c.net_tx, c.memory,
              moment(c.memory_until)) if c else (None,) * 7
    return (*key, *cursor, b.running_us, b.paused_us, b.cpu_request, b.memory_request)


def write_capacity(conn, cfg: config.Config, base: int, w: Window) -> None:
    """Each node's capacity (what it offers placement) x the time it was up, per period."""
    outages = defaultdict(list)
    for r in store.outages(conn):
        outages[r["node"]].append(Span(micros(r["down_at"]), micros(r["up_at"])))
    rows = []
    for row in nodes.all_nodes():
        state = node_state(row, {}, True, cfg.node_reserve_cpus, cfg.node_reserve_memory)
        for period, cap in capacity_rows(micros(row["joined_at"]), outages[row["name"]],
                                         round(state.cpus * 1e9), state.memory, w).items():
            rows.append((moment(period), row["name"], cap.up_us, cap.cpu, cap.memory))
    store.write_capacity(conn, base, rows)


def prune(conn, cfg: config.Config, base: int, longer: list[int], now: datetime) -> None:
    store.prune(conn, base, now - timedelta(seconds=cfg.usage_retention))
    for length in longer:
        store.prune(conn, length, now - timedelta(seconds=cfg.usage_daily_retention))
    keep = max(cfg.usage_retention, cfg.usage_daily_retention, cfg.usage_late_window)
    store.forget_instances(conn, now - timedelta(seconds=keep))
