"""Images through the real processes and a real registry (tests.support.registry) on
127.0.0.1: push through the API, remove, deploy -> pulled and running; a pull's progress over
a slow link; a wrong password; two pulls of one image at once are one pull; a rollout to a
reference that does not exist pauses while the old instances keep serving."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
FAST = {"monitor": 1, "max_surge": 1, "max_unavailable": 0}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def login(api):
    """login(body): registry credentials for one test, removed after it."""
    stored = []

    def store(body: dict) -> None:
        r = api.post("/api/registries", json=body)
        assert r.status_code in (200, 201), r.text
        stored.append(body["registry"])

    yield store
    for registry in stored:
        api.delete(f"/api/registries/{registry}")


def pull_job(api, ref: str, node: str = "local") -> dict:
    r = api.post("/api/images/pull", json={"image": ref, "node": node})
    assert r.status_code == 202, r.text
    body = r.json()
    return body["jobs"][0] if "jobs" in body else body


def job_ended(api, job: dict, wait: float = 180) -> dict:
    return wait_until(lambda: (row := api.get(f"/api/jobs/{job['id']}").json())["status"]
                      in ("succeeded", "failed", "cancelled") and row, wait,
                      f"job {job['id']} ended")


def engine_has(platform, node: str, ref: str) -> bool:
    try:
        platform.engines[node].images.get(ref)
        return True
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound: not there
        return False


def only_in_registry(platform, image) -> None:
    """make_image leaves the pushed image on the local engine: a pull must fetch its layer."""
    for client in platform.engines.values():
        for listed in client.images.list(filters={"label": image.label}):
            client.images.remove(listed.id, force=True)


def delete_deployment(api, name: str) -> None:
    r = api.delete(f"/api/deployments/{name}", params={"wait": 60})
    assert r.status_code in (200, 202, 404), r.text


def test_pushed_through_the_api_removed_then_deployed_is_pulled_and_runs(
        api, platform, registry, make_image, login):
    login(registry.credentials())
    image = make_image(push=False)
    # the agent records the engine's images on each image event: the import shows at once
    wait_until(lambda: api.get(f"/api/images/{image.ref}", params={"node": "local"})
               .status_code == 200, 30, "the new image listed")
    pushed = api.job(api.post("/api/images/push", json={"image": image.ref, "node": "local"}),
                     wait=180)
    assert pushed["result"]["digest"] == registry.manifest_digest(image.repository, image.tag)
    assert pushed["progress"]["done"] == pushed["progress"]["total"] > 20 * 1024 * 1024
    api.job(api.delete(f"/api/images/{image.ref}", params={"node": "local"}))
    assert not engine_has(platform, "local", image.ref)
    name = unique("pulled")
    try:
        api.job(api.post("/api/deployments", params={"wait": 60}, json={
            "name": name, "image": image.ref, "replicas": 1, "update": FAST,
            "placement": {"constraints": ["node.name==local"]}}), wait=240)
        [container] = platform.containers(**{"harbormaster.deployment": name})
        pulled = platform.docker.images.get(image.ref)
        assert container.attrs["Image"] == pulled.id and container.status == "running"
        # the generation was pinned to the registry's digest and created from it
        assert container.attrs["Config"]["Image"] == \
            f"{image.ref.rsplit(':', 1)[0]}@{pushed['result']['digest']}"
        events = api.get("/api/events", params={"kind": "image_pulled"}).json()["items"]
        assert any(e["detail"].get("image") == image.ref for e in events), events
    finally:
        delete_deployment(api, name)


def test_a_pull_over_a_slow_link_reports_its_bytes_as_it_goes(
        api, platform, registry, throttle, make_image, login):
    image = make_image(random_bytes=24 * 1024 * 1024)
    only_in_registry(platform, image)
    login(registry.credentials(throttle.host))
    job = pull_job(api, image.at(throttle.host))
    seen = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        row = api.get(f"/api/jobs/{job['id']}").json()
        if row.get("progress"):
            seen.append((row["progress"]["done"], row["progress"]["total"]))
        if row["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.2)
    throttle.check()
    assert row["status"] == "succeeded", row
    between = {done for done, total in seen if 0 < done < total}
    assert len(between) >= 3, seen
    assert seen[-1][0] == seen[-1][1] >= 24 * 1024 * 1024, seen[-1]
    assert engine_has(platform, "local", image.at(throttle.host))


def test_a_wrong_password_fails_the_pull_with_the_registrys_reason(
        api, platform, registry, make_image, login):
    image = make_image(random_bytes=1024 * 1024)
    only_in_registry(platform, image)
    login(registry.credentials(password="not-the-password"))
    failed = job_ended(api, pull_job(api, image.ref))
    assert failed["status"] == "failed", failed
    assert "unauthorized" in failed["error"], failed["error"]
    assert registry.password not in failed["error"] and "not-the-password" not in str(failed)
    assert not engine_has(platform, "local", image.ref)
    # the failure is remembered: a create of it within the backoff does not pull again
    # ("next try in" is said only by the backoff's refusal)
    name = unique("backoff")
    try:
        created = job_ended(api, api.post("/api/containers", json={
            "image": image.ref, "node": "local", "name": name}).json())
        assert created["status"] == "failed" and "next try in" in created["error"], created
        assert "unauthorized" in created["error"], created["error"]
    finally:
        api.delete(f"/api/containers/{name}", params={"force": "true", "wait": 60})


def test_two_pulls_of_one_image_at_once_are_one_pull(
        api, platform, registry, throttle, make_image, login):
    image = make_image(random_bytes=12 * 1024 * 1024)
    only_in_registry(platform, image)
    ref = image.at(throttle.host)
    login(registry.credentials(throttle.host))
    since = time.time() - 1
    first = pull_job(api, ref)
    wait_until(lambda: (api.get(f"/api/jobs/{first['id']}").json().get("progress") or {})
               .get("done"), 60, "the first pull moving")
    second = pull_job(api, ref)
    ended = [job_ended(api, first), job_ended(api, second)]
    throttle.check()
    assert [j["status"] for j in ended] == ["succeeded", "succeeded"], ended
    assert sorted(j["result"]["followed"] for j in ended) == [False, True], ended
    pulls = platform.docker.api.events(since=since, until=time.time(), decode=True,
                                       filters={"type": "image", "event": "pull"})
    assert [e["id"] for e in pulls if e["id"] == ref] == [ref]


def test_a_rollout_to_a_missing_reference_pauses_while_the_old_instances_serve(
        api, platform, registry, make_image, login):
    login(registry.credentials())
    image = make_image(random_bytes=1024 * 1024)
    name = unique("norollout")
    missing = f"{image.ref.rsplit(':', 1)[0]}:v9"
    try:
        api.job(api.post("/api/deployments", params={"wait": 60}, json={
            "name": name, "image": image.ref, "replicas": 2, "ports": {"80/tcp": None},
            "update": {**FAST, "on_failure": "rollback"}}), wait=240)
        old = platform.containers(**{"harbormaster.deployment": name})
        before = {c.id for c in old}
        addresses = [f"http://127.0.0.1:{c.ports['80/tcp'][0]['HostPort']}/health" for c in old]
        assert len(before) == 2
        sampler = Sampler(addresses)
        sampler.start()
        try:
            job = api.job(api.patch(f"/api/deployments/{name}", json={"image": missing}),
                          wait=240, expect="failed")
            # and they go on serving once the rollout has paused
            ended_at = sampler.count
            wait_until(lambda: sampler.count >= ended_at + 10, 30, "ten more sample rounds")
        finally:
            sampler.stop()
        assert "rollout of generation 2 paused" in job["error"], job["error"]
        assert f"pull {missing}" in job["error"] and "manifest unknown" in job["error"]
        dep = api.get(f"/api/deployments/{name}").json()
        [(stable,)] = platform.sql("SELECT stable_generation FROM deployments WHERE name = %s",
                                   (name,))
        assert dep["generation"] == 2 and stable == 1, dep   # no generation made to go back
        assert dep["status"]["state"] == "paused" and missing in dep["status"]["reason"], dep
        after = {c.id for c in platform.containers(**{"harbormaster.deployment": name})}
        assert after == before  # nothing running was touched
        assert sampler.failures == [], sampler.failures
    finally:
        delete_deployment(api, name)


class Sampler(threading.Thread):
    """GETs every old instance in a loop while the rollout is tried; a sampler that dies
    leaves ``error`` set and fails the test."""

    def __init__(self, urls: list[str]):
        super().__init__(daemon=True)
        self.urls, self.count, self.failures, self.error = urls, 0, [], None
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                for url in self.urls:
                    try:
                        status = requests.get(url, timeout=5).status_code
                    except requests.RequestException as exc:
                        status = repr(exc)
                    if status != 200:
                        self.failures.append((url, status))
                self.count += 1
                self.halt.wait(0.2)
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc

    def stop(self) -> None:
        self.halt.set()
        self.join(10)
        assert not self.is_alive(), "the sampler did not stop"
        assert self.error is None, f"the sampler died: {self.error!r}"


def test_pull_policies_never_and_always(api, platform, registry, make_image, login):
    login(registry.credentials())
    image = make_image(random_bytes=1024 * 1024)
    only_in_registry(platform, image)
    names = [unique("never"), unique("always"), unique("always")]
    try:
        never = api.post("/api/containers", params={"wait": 60}, json={
            "image": image.ref, "node": "local", "pull_policy": "never", "name": names[0]})
        job = job_ended(api, never.json())
        assert job["status"] == "failed" and "pull policy is never" in job["error"], job
        assert not engine_has(platform, "local", image.ref)
        since = time.time() - 1
        for name in names[1:]:   # always: pulled even when it is there
            made = api.job(api.post("/api/containers", params={"wait": 60}, json={
                "image": image.ref, "node": "local", "pull_policy": "always", "name": name}),
                wait=120)
            assert made["result"]["state"] == "running", made
        pulls = platform.docker.api.events(since=since, until=time.time(), decode=True,
                                           filters={"type": "image", "event": "pull"})
        assert [e["id"] for e in pulls if e["id"] == image.ref] == [image.ref, image.ref]
    finally:
        for name in names:
            r = api.delete(f"/api/containers/{name}", params={"force": "true", "wait": 60})
            assert r.status_code in (200, 202, 404), r.text
