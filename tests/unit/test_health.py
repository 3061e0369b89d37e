"""Health arithmetic, classification (inclusive thresholds), alert hysteresis, probe
verdicts, and cgroup v1/v2 parsing on recorded file trees."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import health
from workers import sampler


def test_cpu_percent_of_the_limit_or_host_cores():
    # 0.5 s of CPU in 1 s wall with a 0.5-core limit: 100 %
    assert health.cpu_percent(1_500_000_000, 1_000_000_000, 1.0, 0.5) == 100.0
    # the same on 2 host cores without a limit: 25 %
    assert health.cpu_percent(1_500_000_000, 1_000_000_000, 1.0, 2) == 25.0
    assert health.cpu_percent(5, None, 1.0, 1) is None
    assert health.cpu_percent(5, 10, 1.0, 1) is None  # counter reset (restart)


@pytest.mark.parametrize("cpu,mem,expected", [
    (0, 0, "healthy"), (74.99, 10, "healthy"), (75, 0, "warning"), (10, 75, "warning"),
    (89.99, 0, "warning"), (90, 0, "critical"), (0, 90, "critical"), (None, None, "healthy"),
    (100, 100, "critical")])
def test_classification_is_inclusive(cpu, mem, expected):
    assert health.classify(True, cpu, mem) == expected


def test_not_running_is_stopped():
    assert health.classify(False, 99, 99) == "stopped"


def test_thresholds_are_configurable():
    t = health.Thresholds(warning=50, critical=60)
    assert health.classify(True, 55, 0, t) == "warning"
    assert health.classify(True, 60, 0, t) == "critical"


def test_alert_fires_once_while_hovering_and_rearms_below_the_margin():
    firing, fired = False, 0
    for value in (70, 80, 81, 79, 80, 85, 75, 71, 69.9, 80):
        change = health.alert_transition(firing, value, 80, 10)
        if change == "fire":
            firing, fired = True, fired + 1
        elif change == "rearm":
            firing = False
    assert fired == 2  # once at 80, again only after going below 70


@given(st.lists(st.floats(0, 100), max_size=50))
def test_alerts_alternate_fire_and_rearm(values):
    firing, changes = False, []
    for value in values:
        change = health.alert_transition(firing, value, 80, 10)
        if change:
            changes.append(change)
            firing = change == "fire"
    assert all(a != b for a, b in zip(changes, changes[1:]))
    assert not changes or changes[0] == "fire"


@pytest.mark.parametrize("health_now,ok,bad,start,expected", [
    ("none", 0, 1, False, "starting"), ("starting", 1, 0, False, "healthy"),
    ("healthy", 0, 2, False, "healthy"), ("healthy", 0, 3, False, "unhealthy"),
    ("starting", 0, 5, True, "starting"), ("unhealthy", 1, 0, False, "healthy")])
def test_probe_transitions(health_now, ok, bad, start, expected):
    assert health.probe_transition(health_now, ok, bad, 1, 3, start) == expected


CID = "ab" * 32


def write(root: Path, files: dict):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_cgroup_v2_tree(tmp_path):
    proc, cg = tmp_path / "proc", tmp_path / "cgroup"
    scope = f"system.slice/docker-{CID}.scope"
    write(proc, {"42/cgroup": f"0::/{scope}\n",
                 "42/net/dev": "Inter-|\n face |\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n"
                               "  eth0: 5000 10 0 0 0 0 0 0 7000 12 0 0 0 0 0 0\n"})
    write(cg, {f"{scope}/cpu.stat": "usage_usec 2500000\nuser_usec 2000000\n",
               f"{scope}/memory.current": "10485760\n",
               f"{scope}/memory.stat": "anon 8388608\ninactive_file 2097152\n",
               f"{scope}/memory.max": "268435456\n",
               f"{scope}/cpu.max": "50000 100000\n",
               f"{scope}/io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n",
               f"{scope}/pids.current": "3\n"})
    s = sampler.read_container(42, CID, proc, cg)
    assert (s.cpu_ns, s.memory_bytes, s.memory_limit, s.cpu_limit) == \
        (2_500_000_000, 8388608, 268435456, 0.5)
    assert (s.net_rx, s.net_tx, s.blk_read, s.blk_write, s.pids) == (5000, 7000, 4096, 8192, 3)


def test_cgroup_v2_without_limits(tmp_path):
    proc, cg = tmp_path / "proc", tmp_path / "cgroup"
    write(proc, {"7/cgroup": f"0::/docker/{CID}\n", "7/net/dev": "a\nb\n"})
    write(cg, {f"docker/{CID}/cpu.stat": "usage_usec 1\n", f"docker/{CID}/memory.current": "5\n",
               f"docker/{CID}/memory.stat": "anon 5\n", f"docker/{CID}/memory.max": "max\n",
               f"docker/{CID}/cpu.max": "max 100000\n", f"docker/{CID}/pids.current": "1\n"})
    s = sampler.read_container(7, CID, proc, cg)
    assert s.memory_limit is None and s.cpu_limit is None and s.memory_bytes == 5


def test_cgroup_v1_tree(tmp_path):
    proc, cg = tmp_path / "proc", tmp_path / "cgroup"
    lines = [f"{i}:{c}:/docker/{CID}" for i, c in
             enumerate(["cpu", "cpuacct", "memory", "blkio", "pids"], 1)]
    write(proc, {"9/cgroup": "\n".join(lines + [f"0::/docker/{CID}"]) + "\n",
                 "9/net/dev": "x\ny\n  eth0: 10 0 0 0 0 0 0 0 20 0 0 0 0 0 0 0\n"})
    base = f"docker/{CID}"
    write(cg, {f"cpuacct/{base}/cpuacct.usage": "123456789\n",
               f"memory/{base}/memory.usage_in_bytes": "1000000\n",
               f"memory/{base}/memory.stat": "cache 1000\ntotal_inactive_file 200000\n",
               f"memory/{base}/memory.limit_in_bytes": "9223372036854771712\n",
               f"cpu/{base}/cpu.cfs_quota_us": "25000\n", f"cpu/{base}/cpu.cfs_period_us": "100000\n",
               f"blkio/{base}/blkio.throttle.io_service_bytes":
                   "8:0 Read 100\n8:0 Write 300\n8:0 Total 400\nTotal 400\n",
               f"pids/{base}/pids.current": "2\n"})
    s = sampler.read_container(9, CID, proc, cg)
    assert (s.cpu_ns, s.memory_bytes, s.memory_limit, s.cpu_limit) == (123456789, 800000, None, 0.25)
    assert (s.blk_read, s.blk_write, s.pids, s.net_rx, s.net_tx) == (100, 300, 2, 10, 20)


def test_a_pid_outside_the_container_is_unreadable(tmp_path):
    write(tmp_path, {"1/cgroup": "0::/init.scope\n"})
    with pytest.raises(sampler.Unreadable):
        sampler.cgroup_paths(1, CID, tmp_path, tmp_path)


def test_engine_stats_fallback():
    s = sampler.from_engine_stats({
        "cpu_stats": {"cpu_usage": {"total_usage": 42}},
        "memory_stats": {"usage": 1000, "limit": 4000, "stats": {"total_inactive_file": 100}},
        "networks": {"eth0": {"rx_bytes": 1, "tx_bytes": 2}},
        "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 5}]},
        "pids_stats": {"current": 4}})
    assert (s.cpu_ns, s.memory_bytes, s.memory_limit, s.net_rx, s.blk_read, s.pids,
            s.source) == (42, 900, 4000, 1, 5, 4, "engine")
