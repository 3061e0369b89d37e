"""The usage rollup against the real Postgres (the session platform's), on a container of a
made-up node at made-up times in 2001, with short periods (20 s "hours", 60 s "days"): the
rows of each period, a day equal to the sum of its hours, closed rows that a later run
leaves alone and that the database refuses to change, and a run's end learned late."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

import config

pytestmark = pytest.mark.e2e
T0 = datetime(2001, 1, 1, tzinfo=timezone.utc)
PERIODS = (20, 60)
FIELDS = ("running_us", "paused_us", "cpu_used_ns", "cpu_request", "memory_used",
          "memory_request", "net_rx", "net_tx")


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def made_up(platform):
    from db import pool
    node, docker_id = f"it-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex * 2
    yield node, docker_id
    for table in ("usage_rows", "usage_spans", "usage_limits", "usage_state",
                  "usage_instances", "health_snapshots"):
        pool.execute(f"DELETE FROM {table} WHERE node = %s", (node,))
    pool.execute("DELETE FROM usage_rollups WHERE period_seconds = ANY(%s)", (list(PERIODS),))


def observed(docker_id: str, state: str, finished=None) -> dict:
    return {"docker_id": docker_id, "name": "burn-1", "kind": "standalone",
            "labels": {"team": "a", "harbormaster.kind": "standalone"},
            "started_at": t(5), "finished_at": finished, "state": state}


def rows(node: str, length: int) -> dict:
    from db import pool
    found = pool.fetchall(f"SELECT period_start, closed, {', '.join(FIELDS)} FROM usage_rows"
                          " WHERE node = %s AND period_seconds = %s ORDER BY period_start",
                          (node, length))
    return {int((r["period_start"] - T0).total_seconds()): r for r in found}


def test_hours_days_closing_and_a_late_end(platform, made_up):
    from db import health, pool, usage
    from workers import metering
    node, docker_id = made_up
    cfg = config.from_env(platform.env)

    def rollup(at: float) -> dict:
        return metering.rollup(cfg, now=t(at), periods=PERIODS, close_delay=0)

    usage.observe(node, observed(docker_id, "running"), t(5), 500_000_000, 64 << 20, False)
    health.insert_snapshots([(t(s), "burn-1", None, node, True, int((s - 5) * 0.5e9), 1000,
                              None, None, 10 * s, 20 * s, 0, 0, 1, None, None, "healthy",
                              "cgroup", docker_id) for s in range(6, 50, 2)])
    rollup(1)                         # metering starts at 0 s
    rollup(30)
    first = rows(node, 20)
    assert first[0]["closed"] and not first[20]["closed"]
    assert first[0]["running_us"] == 15_000_000 and first[0]["cpu_used_ns"] == 7_500_000_000
    # the run ended at 47 s, but the agent says so only at 65 s: the 40 s period is billed
    # as running until it closes at 60 s, then its end is known
    rollup(62)
    usage.observe(node, observed(docker_id, "stopped", t(47)), t(65), 500_000_000, 64 << 20,
                  False)
    rollup(70)
    rollup(130)
    base, days = rows(node, 20), rows(node, 60)
    assert all(r["closed"] for r in base.values()) and list(days) == [0] and days[0]["closed"]
    assert base[40]["running_us"] == 20_000_000   # closed while it still seemed to run
    assert sum(r["running_us"] for r in base.values()) == 55_000_000  # never taken back
    for field in FIELDS:
        assert days[0][field] == sum(r[field] for p, r in base.items() if p < 60), field
    assert sum(r["cpu_used_ns"] for r in base.values()) == int(43 * 0.5e9)   # last counter
    assert sum(r["net_rx"] for r in base.values()) == 480

    rollup(131)
    assert rows(node, 20) == base and rows(node, 60) == days
    with pytest.raises(psycopg.errors.RaiseException, match="is final"):
        pool.execute("UPDATE usage_rows SET running_us = running_us + 1 WHERE node = %s"
                     " AND closed", (node,))
