"""Two passes recording one container at once (issue 12, finding 2): the worker raised
UniqueViolation on containers_docker_id_key when two passes observed a new container
together. Real Postgres (the session platform's)."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.e2e


def observed(name: str, docker_id: str) -> dict:
    return {"name": name, "docker_id": docker_id, "state": "running", "ports": {}, "pid": 1,
            "exit_code": None, "restarts": 0, "started_at": None, "finished_at": None,
            "labels": {"harbormaster.deployment": "race", "harbormaster.slot": "0",
                       "harbormaster.generation": "1"},
            "image": "harbormaster/busybox-httpd", "kind": "deployment", "node": "local"}


def test_concurrent_observations_of_one_new_container_record_it_once(platform):
    from db import containers, pool
    names = [f"race-{uuid.uuid4().hex[:8]}" for _ in range(40)]
    try:
        with ThreadPoolExecutor(max_workers=8) as workers:
            for name in names:
                fields = observed(name, uuid.uuid4().hex + uuid.uuid4().hex)
                # every thread records the same new container at the same moment
                list(workers.map(lambda _: containers.observe(fields), range(8)))
        rows = pool.fetchall("SELECT name, count(*) AS n FROM containers WHERE name = ANY(%s)"
                             " GROUP BY name", (names,))
        assert sorted(r["name"] for r in rows) == sorted(names)
        assert all(r["n"] == 1 for r in rows)
    finally:
        pool.execute("DELETE FROM containers WHERE name = ANY(%s)", (names,))
