"""Jobs: listing, waiting, cancelling, idempotency, bad input."""
from __future__ import annotations

import uuid

import pytest

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
HTTPD = "harbormaster/busybox-httpd"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_wait_on_the_request_answers_when_the_job_ends(api):
    r = api.post("/api/containers", json={"image": HTTPD, "name": unique("wait")},
                 params={"wait": "30s"})
    assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
    job = api.get(f"/api/jobs/{r.json()['id']}").json()
    assert job["result"]["container_id"] and job["finished_at"]


def test_idempotency_key_returns_the_original_job(api, platform):
    name = unique("idem")
    headers = {"Idempotency-Key": f"key-{name}"}
    first = api.post("/api/containers", json={"image": HTTPD, "name": name}, headers=headers)
    second = api.post("/api/containers", json={"image": HTTPD, "name": name}, headers=headers)
    assert first.status_code == 202 and second.status_code in (200, 202)
    assert first.json()["id"] == second.json()["id"]
    assert api.job(first)["status"] == "succeeded"
    assert len(platform.containers(**{"harbormaster.name": name})) == 1


def test_list_jobs_filters_by_status_and_kind(api):
    api.job(api.post("/api/containers", json={"image": HTTPD, "name": unique("list")}))
    page = api.get("/api/jobs", params={"kind": "create_container", "status": "succeeded",
                                        "limit": 2}).json()
    assert page["items"] and all(j["kind"] == "create_container" and
                                 j["status"] == "succeeded" for j in page["items"])
    if page["next"]:
        following = api.get("/api/jobs", params={"kind": "create_container",
                                                 "cursor": page["next"], "limit": 2}).json()
        assert not {j["id"] for j in following["items"]} & {j["id"] for j in page["items"]}
    assert api.get("/api/jobs", params={"status": "bogus"}).status_code == 422


def test_cancel_a_queued_job(api, platform):
    # a container's creation is local's executor's work (node.local): with it stopped, the
    # job waits in its queue
    platform.stop_program("executor")
    try:
        name = unique("cancel")
        r = api.post("/api/containers", json={"image": HTTPD, "name": name, "node": "local"})
        assert r.status_code == 202 and r.json()["status"] == "queued"
        cancelled = api.delete(f"/api/jobs/{r.json()['id']}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        again = api.delete(f"/api/jobs/{r.json()['id']}")
        assert again.status_code == 409
    finally:
        platform.start_program("executor")
    # the executor drops the message of the cancelled job: nothing is created
    probe = api.job(api.post("/api/containers", json={"image": HTTPD, "name": unique("after"),
                                                      "node": "local"}))
    assert probe["status"] == "succeeded"
    assert not platform.containers(**{"harbormaster.name": name})
    assert api.get(f"/api/jobs/{r.json()['id']}").json()["status"] == "cancelled"
    # the container was only requested: its record is gone with the job, not left "creating"
    assert api.get(f"/api/containers/{name}").status_code == 404
    assert name not in [c["name"] for c in api.get("/api/containers").json()["items"]]
    assert "create_cancelled" in [e["kind"] for e in api.get(
        "/api/events", params={"container": name}).json()["items"]]


def test_bad_input_is_400_or_422_naming_the_field_never_500(api):
    r = api.post("/api/containers", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "malformed_json"
    cases = {
        "image": {"image": "UPPER/Case::bad"},
        "ports": {"image": HTTPD, "ports": {"99999/tcp": None}},
        "resources.memory": {"image": HTTPD, "resources": {"memory": "12xb"}},
        "resources.cpus": {"image": HTTPD, "resources": {"cpus": "lots"}},
        "surprise": {"image": HTTPD, "surprise": 1},
        "name": {"image": HTTPD, "name": "bad name!"},
    }
    for field, body in cases.items():
        r = api.post("/api/containers", json=body)
        assert r.status_code == 422, (field, r.text)
        assert any(k.startswith(field) for k in r.json()["fields"]), (field, r.json())
    assert api.get("/api/containers/no-such-container").status_code == 404
    assert api.get("/api/jobs/00000000-0000-0000-0000-000000000000").status_code == 404
    assert api.post("/api/containers/no-such-container/stop").status_code == 404
    assert api.get("/api/jobs/not-a-uuid").status_code == 422


def test_a_taken_name_is_409(api):
    name = unique("dup")
    assert api.job(api.post("/api/containers", json={"image": HTTPD, "name": name}))["status"] \
        == "succeeded"
    r = api.post("/api/containers", json={"image": HTTPD, "name": name})
    assert r.status_code == 409 and r.json()["error"] == "conflict"


def test_widening_options_refused_by_default_configuration(api):
    for body, field in (({"security": {"privileged": True}}, "security.privileged"),
                        ({"mounts": [{"type": "bind", "source": "/etc", "target": "/x"}]},
                         "mounts.0.type"),
                        ({"security": {"network_mode": "host"}}, "security.network_mode"),
                        ({"security": {"cap_add": ["SYS_ADMIN"]}}, "security.cap_add")):
        r = api.post("/api/containers", json={"image": HTTPD, **body})
        assert r.status_code == 422, r.text
        assert field in r.json()["fields"]
    ok = api.post("/api/containers", json={"image": HTTPD, "name": unique("vol"), "mounts": [
        {"type": "volume", "source": unique("vol"), "target": "/data"},
        {"type": "tmpfs", "target": "/scratch"}]})
    assert api.job(ok)["status"] == "succeeded"


def test_usage_summary_counts_running_containers(api):
    """The summary counts this test's own container: its share is what changes when the
    container stops (measured again if something else changed the totals meanwhile)."""
    name = unique("usage")
    api.job(api.post("/api/containers", json={"image": HTTPD, "name": name,
                                              "resources": {"cpus": 0.25, "memory": "16m"}}))

    def share() -> dict:
        running = api.get("/api/containers/usage/summary").json()
        api.job(api.post(f"/api/containers/{name}/stop", params={"timeout": 1}))
        stopped = api.get("/api/containers/usage/summary").json()
        api.job(api.post(f"/api/containers/{name}/start"))
        return {"running": running["by_state"].get("running", 0)
                - stopped["by_state"].get("running", 0),
                "stopped": stopped["by_state"].get("stopped", 0)
                - running["by_state"].get("stopped", 0),
                "containers": running["containers"] - stopped["containers"],
                "cpus": round(running["reserved_cpus"] - stopped["reserved_cpus"], 3),
                "memory": running["reserved_memory_bytes"] - stopped["reserved_memory_bytes"]}

    expected = {"running": 1, "stopped": 1, "containers": 0, "cpus": 0.25,
                "memory": 16 * 1024 * 1024}
    shares = []
    wait_until(lambda: shares.append(share()) or shares[-1] == expected, 60,
               "the summary counts exactly this container")
    print(f"[usage] measured {len(shares)} time(s): {shares}")
    api.job(api.delete(f"/api/containers/{name}", params={"force": "true"}))
