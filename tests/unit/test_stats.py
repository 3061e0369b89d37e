"""One memory rule for every screen (Docker CLI's): usage minus the inactive page cache."""
from __future__ import annotations

from core import stats as sampler

MB = 1024 * 1024


def doc(stats: dict, usage: int = 100 * MB, limit: int = 512 * MB) -> dict:
    return {"memory_stats": {"usage": usage, "limit": limit, "stats": stats},
            "cpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000}, "system_cpu_usage": 20e9,
                          "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000},
                             "system_cpu_usage": 10e9},
            "networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 20}}, "pids_stats": {"current": 3}}


def test_cgroup_v1_subtracts_total_inactive_file_not_the_whole_cache():
    raw = doc({"cache": 60 * MB, "total_inactive_file": 20 * MB, "inactive_file": 5 * MB})
    assert sampler.engine_summary(raw)["memory_bytes"] == 80 * MB
    assert sampler.from_engine_stats(raw).memory_bytes == 80 * MB


def test_cgroup_v2_subtracts_inactive_file():
    raw = doc({"file": 60 * MB, "inactive_file": 30 * MB, "active_file": 30 * MB})
    assert sampler.engine_summary(raw)["memory_bytes"] == 70 * MB
    assert sampler.from_engine_stats(raw).memory_bytes == 70 * MB


def test_inactive_above_usage_leaves_usage_as_it_is():
    raw = doc({"total_inactive_file": 120 * MB})
    assert sampler.engine_summary(raw)["memory_bytes"] == 100 * MB


def test_summary_figures():
    summary = sampler.engine_summary(doc({"total_inactive_file": 0}))
    assert summary["cpu_percent"] == 20.0          # 1 s of 10 s on 2 cores
    assert summary["memory_percent"] == round(100 / 512 * 100, 2)
    assert (summary["network_rx_bytes"], summary["network_tx_bytes"]) == (10, 20)
    assert summary["pids"] == 3
