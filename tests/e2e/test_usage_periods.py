"""Closed periods are final (issue 17's "Must show", with a short period): the rollup run by
the test itself with 17 s periods (its rows kept apart by their length) closes a period in
which a 0.5-CPU burner ran and was paused, a later run leaves that row as it was, and a
sample of the burner written late (the counter as the pause froze it) lands in the period
open when it came, not in the closed one."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import config
from tests.e2e.test_usage import (BURN, cgroup_cpu_ns, docker_time, remove_container,
                                  start_container, unique)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
SHORT = 17          # seconds: a period length no other rollup uses
DELAY = 2.0
LIMIT_NANOS, MEMORY = 500_000_000, 64 * 2 ** 20


def pause_unsampled(api, platform, name: str, docker_id: str) -> datetime:
    """Pause a burner so that no sample is taken after the pause (a sweep that read it in
    the instant between the pause and its record would be one: then unpause and pause
    again); when it paused."""
    for _ in range(3):
        api.job(api.post(f"/api/containers/{name}/pause", params={"wait": 60}))
        paused_at = wait_until(lambda: platform.sql(
            "SELECT started_at FROM usage_spans WHERE docker_id = %s AND kind = 'pause'"
            " AND ended_at IS NULL", (docker_id,)), 30, "the pause recorded")[0][0]
        wait_until(lambda: platform.sql(
            "SELECT count(*) FROM health_snapshots WHERE docker_id = %s AND at > %s",
            (docker_id, paused_at + timedelta(seconds=1)))[0][0] > 0, 30,
            "a sweep after the pause")
        if not platform.sql("SELECT count(*) FROM health_snapshots WHERE docker_id = %s"
                            " AND at >= %s AND cpu_ns IS NOT NULL", (docker_id, paused_at))[0][0]:
            return paused_at
        api.job(api.post(f"/api/containers/{name}/unpause", params={"wait": 60}))
        going = platform.sql("SELECT now()")[0][0]
        wait_until(lambda: platform.sql(
            "SELECT count(*) FROM health_snapshots WHERE docker_id = %s AND at > %s"
            " AND cpu_ns IS NOT NULL", (docker_id, going))[0][0] > 0, 30, "burning again")
    raise AssertionError("every pause was sampled")


def row(docker_id: str, start: datetime) -> dict | None:
    """The instance's row of the period starting then, as stored (exact integers)."""
    from db import pool
    found = pool.fetchone(
        "SELECT closed, running_us, paused_us, cpu_used_ns, cpu_request::text,"
        " memory_used::text, memory_request::text, net_rx, net_tx FROM usage_rows"
        " WHERE period_seconds = %s AND period_start = %s AND docker_id = %s",
        (SHORT, start, docker_id))
    return dict(found) if found else None


def check_closed(closed: dict, started: datetime, paused_at: datetime,
                 p_start: datetime) -> None:
    """P's row: running until the pause, paused after, requests by the limits, CPU used
    within what the limit allows."""
    p_end = p_start + timedelta(seconds=SHORT)
    held = (p_end - max(p_start, started)).total_seconds()
    running = (paused_at - max(p_start, started)).total_seconds()
    assert closed["closed"]
    assert closed["running_us"] == round(running * 1e6)
    assert closed["paused_us"] == round((p_end - paused_at).total_seconds() * 1e6)
    assert int(closed["cpu_request"]) == LIMIT_NANOS * closed["running_us"]
    assert int(closed["memory_request"]) == MEMORY * round(held * 1e6)
    assert 0 < closed["cpu_used_ns"] <= 0.5 * running * 1e9 * 1.03


def write_late_sample(platform, name: str, docker_id: str, paused_at: datetime,
                      frozen: int) -> int:
    """The sample the sampler would have taken at the pause, written only now: the counter
    as the pause froze it, newer than every sample already consumed. What it adds."""
    from db import pool
    last = pool.fetchone("SELECT at, cpu_ns, memory_bytes, net_rx, net_tx FROM"
                         " health_snapshots WHERE docker_id = %s AND cpu_ns IS NOT NULL"
                         " ORDER BY at DESC LIMIT 1", (docker_id,))
    assert last["at"] < paused_at and frozen > last["cpu_ns"], (last, frozen)
    platform.sql(
        "INSERT INTO health_snapshots (at, container, node, running, cpu_ns, memory_bytes,"
        " net_rx, net_tx, status, source, docker_id) VALUES (%s, %s, 'local', true, %s, %s,"
        " %s, %s, 'healthy', 'cgroup', %s)",
        (paused_at, name, frozen, last["memory_bytes"], last["net_rx"], last["net_tx"],
         docker_id))
    return frozen - last["cpu_ns"]


def test_a_closed_period_stays_as_it_closed_and_a_late_sample_goes_to_the_open_one(
        api, platform):
    from workers import metering
    cfg = config.from_env(platform.env)

    def rollup():
        return metering.rollup(cfg, periods=(SHORT,), close_delay=DELAY)

    name = unique("closing")
    rollup()
    start_container(api, name, BURN, resources={"cpus": 0.5, "memory": "64m"})
    try:
        docker_id = platform.inspect(name)["Id"]
        started = docker_time(platform.inspect(name)["State"]["StartedAt"])
        wait_until(lambda: rollup() and datetime.now(timezone.utc) >= started
                   + timedelta(seconds=SHORT / 2), 120, "half a period of burning", interval=1)
        paused_at = pause_unsampled(api, platform, name, docker_id)
        frozen = cgroup_cpu_ns(platform.inspect(name)["State"]["Pid"])
        # P: the period the pause is in
        p_start = datetime.fromtimestamp(int(paused_at.timestamp()) // SHORT * SHORT,
                                         timezone.utc)
        p_end = p_start + timedelta(seconds=SHORT)
        wait_until(lambda: rollup()["closing_until"] >= p_end, 120, "P closed", interval=1)
        closed = row(docker_id, p_start)
        print(f"P {p_start:%H:%M:%S}..{p_end:%H:%M:%S} (started {started:%H:%M:%S.%f}, paused"
              f" {paused_at:%H:%M:%S.%f}): {closed}")
        check_closed(closed, started, paused_at, p_start)

        after = rollup()
        assert row(docker_id, p_start) == closed
        late = write_late_sample(platform, name, docker_id, paused_at, frozen)
        open_start = after["closing_until"]
        before = row(docker_id, open_start) or {"cpu_used_ns": 0}
        later = rollup()
        assert row(docker_id, p_start) == closed
        moved = row(docker_id, open_start)["cpu_used_ns"] - before["cpu_used_ns"]
        print(f"late sample: +{late / 1e9:.4f} core-s, in the period from "
              f"{open_start:%H:%M:%S} (+{moved / 1e9:.4f}); {later}")
        assert open_start > p_start and moved == late
    finally:
        remove_container(api, name)
