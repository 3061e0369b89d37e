"""GET /api/jobs/<ref> takes a job id or a unique prefix of it, as docker takes container-id
prefixes (issue 12, the CLI section): a unique prefix finds the job, an ambiguous one is 409
naming how many match, none is 404. Real web and Postgres of the session platform; the jobs
that share a prefix are rows written with chosen ids (the API never lets a client choose one)."""
from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.e2e


def ended_job(job_id: str) -> None:
    """An ended job row with ``job_id`` (ended, so no worker or outbox pass ever picks it up)."""
    from db import pool
    pool.execute("INSERT INTO jobs (id, kind, target, actor, queue, status, requested_by,"
                 " finished_at) VALUES (%s, 'restart_container', 'container/ref-test',"
                 " 'restart_container', 'default', 'succeeded', 'test', now())", (job_id,))


@pytest.fixture
def shared_prefix(platform):
    """Two ended jobs whose ids share 8 random hex digits (nothing else can share them)."""
    from db import pool
    prefix = uuid.uuid4().hex[:8]
    ids = [str(uuid.UUID(prefix + uuid.uuid4().hex[8:])) for _ in range(2)]
    for job_id in ids:
        ended_job(job_id)
    try:
        yield prefix, ids
    finally:
        pool.execute("DELETE FROM jobs WHERE id = ANY(%s::uuid[])", (ids,))


def test_a_unique_prefix_finds_the_job(api, shared_prefix):
    prefix, ids = shared_prefix
    for job_id in ids:
        # the first 12 hex digits, with and without the dash a copied id carries
        for ref in (job_id[:13], job_id.replace("-", "")[:12], job_id.upper()[:13], job_id):
            r = api.get(f"/api/jobs/{ref}")
            assert r.status_code == 200 and r.json()["id"] == job_id, (ref, r.text)
    waited = api.get(f"/api/jobs/{ids[0][:13]}", params={"wait": "1s"})
    assert waited.status_code == 200 and waited.json()["id"] == ids[0], waited.text


def test_four_hex_digits_are_enough(api, platform):
    from db import pool
    taken = {r["p"] for r in pool.fetchall("SELECT DISTINCT left(id::text, 4) AS p FROM jobs")}
    prefix = next(p for p in (uuid.uuid4().hex[:4] for _ in range(1000)) if p not in taken)
    job_id = str(uuid.UUID(prefix + uuid.uuid4().hex[4:]))
    ended_job(job_id)
    try:
        r = api.get(f"/api/jobs/{prefix}")
        assert r.status_code == 200 and r.json()["id"] == job_id, r.text
    finally:
        pool.execute("DELETE FROM jobs WHERE id = %s", (job_id,))


def test_an_ambiguous_prefix_is_409_naming_how_many(api, shared_prefix):
    prefix, _ = shared_prefix
    r = api.get(f"/api/jobs/{prefix}")
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "conflict" and "2 jobs" in r.json()["detail"], r.text


def test_no_match_is_404_and_a_malformed_ref_422(api, platform):
    unused = uuid.uuid4().hex[:10]
    r = api.get(f"/api/jobs/{unused}")
    assert r.status_code == 404 and unused in r.json()["detail"], r.text
    assert api.get(f"/api/jobs/{uuid.uuid4()}").status_code == 404
    for bad in ("3f2", "xyz1", "3f-2a1"):  # too short, not hex, a dash out of place
        r = api.get(f"/api/jobs/{bad}")
        assert r.status_code == 422 and "job_id" in r.json().get("fields", {}), (bad, r.text)


def test_the_openapi_document_says_a_prefix_is_accepted(api):
    operation = api.get("/api/openapi.json").json()["paths"]["/api/jobs/{job_id}"]["get"]
    [param] = [p for p in operation["parameters"] if p["name"] == "job_id"]
    assert param["schema"].get("format") != "uuid" and "prefix" in param["schema"]["description"]
    assert "409" in operation["responses"]
