"""The seed's health and system routes: /health/detailed, /system/resources,
/test/integration (real checks of Postgres, Docker through the node heartbeat, sampling)."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import psutil
from flask import jsonify

from db import containers, health, nodes, pool
from db.pool import Unavailable
from web import dispatch
from web.context import settings
from web.legacy.common import Fail, bp


def check_postgres() -> tuple[bool, str]:
    try:
        started = time.perf_counter()
        pool.ping()
        return True, f"connected ({(time.perf_counter() - started) * 1000:.1f} ms)"
    except Unavailable as exc:
        return False, str(exc)[:300]


def check_docker() -> tuple[bool | None, str]:
    """Docker on every node, from its heartbeat: healthy when every node's is."""
    try:
        rows = nodes.all_nodes()
    except Unavailable:
        return None, "unknown: postgres (which holds the node heartbeat) is unavailable"
    if not rows:
        return False, "no node has registered yet (is an agent running?)"
    problems = [p for p in (dispatch.docker_problem(r["name"], r) for r in rows) if p]
    if problems:
        return False, "; ".join(problems)
    return True, "; ".join(f"{r['name']}: Docker {r['docker_version']} answered in "
                           f"{r['docker_latency_ms']:.1f} ms" for r in rows)


@bp.get("/health/detailed")
def health_detailed():
    pg_ok, pg_message = check_postgres()
    docker_ok, docker_message = check_docker()
    cpu, memory = psutil.cpu_percent(interval=None), psutil.virtual_memory().percent
    managed = None
    if pg_ok:
        managed = sum(containers.count_by_state().values())
    resources_ok = cpu < 90 and memory < 90
    components = {
        "docker": {"status": "healthy" if docker_ok else "unhealthy", "message": docker_message},
        "postgresql": {"status": "healthy" if pg_ok else "unhealthy", "message": pg_message},
        "container_manager": {"status": "healthy" if pg_ok else "unhealthy",
                              "message": f"Managing {managed} containers" if pg_ok
                              else "container records unavailable"},
        "system_resources": {"status": "healthy" if resources_ok else "warning",
                             "cpu_usage": f"{cpu:.1f}%", "memory_usage": f"{memory:.1f}%"},
    }
    status = "OK"
    if not docker_ok or not resources_ok:
        status = "DEGRADED"
    if not pg_ok:
        status = "ERROR"
    return jsonify({"status": status, "timestamp": datetime.now(timezone.utc).isoformat(),
                    "components": components})


def docker_totals() -> dict:
    by_state = containers.count_by_state()
    latest = health.latest([r["name"] for r in containers.find(state="running", role="active",
                                                                limit=100000)])
    cpu = sum((s["cpu_percent"] or 0) for s in latest)
    memory_mb = sum((s["memory_bytes"] or 0) for s in latest) / 1024 / 1024
    running = by_state.get("running", 0)
    return {"managed_containers": sum(by_state.values()), "running_containers": running,
            "total_cpu_usage_percent": round(cpu, 2), "total_memory_usage_mb": round(memory_mb, 2),
            "average_cpu_per_container": round(cpu / running, 2) if running else 0.0,
            "average_memory_per_container_mb": round(memory_mb / running, 2) if running else 0.0}


@bp.get("/system/resources")
def system_resources():
    try:
        cores = psutil.cpu_count() or 1
        usage = psutil.cpu_percent(interval=0.1)
        mem, disk = psutil.virtual_memory(), psutil.disk_usage("/")
        gb = 1024 ** 3
        return jsonify({"system": {
            "cpu": {"total_cores": cores, "current_usage_percent": usage,
                    "available_cores": round(cores * (100 - usage) / 100, 2)},
            "memory": {"total_gb": round(mem.total / gb, 2),
                       "available_gb": round(mem.available / gb, 2),
                       "usage_percent": mem.percent},
            "disk": {"total_gb": round(disk.total / gb, 2), "free_gb": round(disk.free / gb, 2),
                     "usage_percent": disk.percent}},
            "docker": docker_totals()})
    except (Unavailable, OSError) as exc:
        raise Fail(500, f"could not measure resources: {exc}") from None


@bp.get("/test/integration")
def integration():
    tests = {}
    docker_ok, docker_message = check_docker()
    tests["docker_connection"] = {"status": "PASS" if docker_ok else "FAIL",
                                  "message": docker_message}
    pg_ok, pg_message = check_postgres()
    tests["postgresql"] = {"status": "PASS" if pg_ok else "FAIL", "message": pg_message}
    if pg_ok:
        n = len(containers.find(role="active", limit=100000))
        tests["container_listing"] = {"status": "PASS", "message": f"{n} containers listed"}
        fresh = health.newest_at()
        age = (datetime.now(timezone.utc) - fresh).total_seconds() if fresh else None
        limit = 3 * settings().sample_interval
        tests["health_monitoring"] = {
            "status": "PASS" if age is not None and age <= limit else "WARNING",
            "message": f"last health sample {age:.0f}s ago" if age is not None
            else "no health samples yet"}
    else:
        tests["container_listing"] = {"status": "FAIL", "message": "postgres is unavailable"}
        tests["health_monitoring"] = {"status": "FAIL", "message": "postgres is unavailable"}
    try:
        cpu, memory = psutil.cpu_percent(interval=None), psutil.virtual_memory().percent
        tests["system_resources"] = {"status": "PASS" if max(cpu, memory) < 90 else "WARNING",
                                     "message": f"cpu {cpu:.1f}%, memory {memory:.1f}%"}
    except OSError as exc:
        tests["system_resources"] = {"status": "FAIL", "message": str(exc)}
    overall = "FAILED" if any(t["status"] == "FAIL" for t in tests.values()) else "PASSED"
    return jsonify({"timestamp": datetime.now(timezone.utc).isoformat(), "tests": tests,
                    "overall_status": overall})


