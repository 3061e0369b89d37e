"""/api/images and /api/registries through the real platform (two nodes, two engines): the
images each engine holds as Docker says, a reference found by tag, id and id prefix, with a
registry's host, port and slashes in the path; removal refused naming the deployment that
uses an image (force or not while it runs), a tag's alias removable; pulls as one job per
ready node with ?wait=; every refusal by role, 404, 409, 422 and 503; registry credentials
stored and never shown, logged or sent anywhere in clear."""
from __future__ import annotations

import json
import uuid

import docker
import pytest

from tests.support import layers
from tests.support.platform import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
HTTPD = "harbormaster/busybox-httpd"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def engine_ids(platform, node: str) -> set[str]:
    return {entry["Id"] for entry in platform.engines[node].api.images()}


def listed(api, ref: str, node: str, timeout: float = 30) -> dict:
    """The image ``ref`` names on ``node``, once GET /api/images/<ref> shows it there (the
    agent lists its engine's images on each full sync, image jobs at once)."""
    def found():
        r = api.get(f"/api/images/{ref}", params={"node": node})
        return r.status_code == 200 and r.json()["items"]
    [item] = wait_until(found, timeout, f"{ref} listed on {node}")
    return item


def deploy_on_local(api, name: str, ref: str) -> None:
    r = api.post("/api/deployments", params={"wait": 90}, json={
        "name": name, "image": ref, "replicas": 1, "update": {"monitor": 0.5},
        "placement": {"constraints": ["node.name==local"]}})
    assert api.job(r, wait=120)["status"] == "succeeded"


@pytest.fixture
def local_image(platform):
    """An image of this test only, on local's engine, named for a registry with a port and
    a path (127.0.0.1:<port>/hm-test/<name>:v1) that nothing ever pulls from: it is there."""
    image = layers.build(platform.docker, f"127.0.0.1:{free_port()}", random_bytes=4096)
    yield image
    errors = layers.remove(platform.engines.values(), [image.ident])
    assert not errors, errors


def test_images_are_listed_per_node_as_each_engine_holds_them(api, viewer, platform):
    for node in ("local", "n2"):
        def same_as_docker(node=node):
            items = viewer.get("/api/images", params={"node": node}).json()["items"]
            ids = {i["id"] for i in items}
            return items if ids == engine_ids(platform, node) else None
        items = wait_until(same_as_docker, 30, f"GET /api/images?node={node} equals its engine")
        assert {i["node"] for i in items} == {node}
        [httpd] = [i for i in items if f"{HTTPD}:latest" in i["tags"]]
        truth = platform.engines[node].images.get(HTTPD).attrs
        assert httpd["id"] == truth["Id"] and httpd["short_id"] == truth["Id"][7:19], httpd
        assert httpd["size"] == truth["Size"] and httpd["digests"] == [], httpd
        assert sorted(httpd["tags"]) == sorted(truth["RepoTags"]), httpd
        assert httpd["labels"]["harbormaster.test-image"] == "true", httpd
        assert httpd["created"][:19] == truth["Created"][:19], (httpd, truth["Created"])
    everything = viewer.get("/api/images").json()["items"]
    assert {i["node"] for i in everything} == {"local", "n2"}
    r = viewer.get("/api/images", params={"node": "nosuch"})
    assert r.status_code == 404 and "nosuch" in r.json()["detail"], r.text


def test_an_image_is_found_by_tag_id_and_id_prefix(api, viewer, platform):
    truth = platform.docker.images.get(HTTPD).attrs["Id"]
    by_tag = viewer.get(f"/api/images/{HTTPD}").json()  # :latest when no tag is given
    assert by_tag["reference"] == HTTPD
    on_local = [i for i in by_tag["items"] if i["node"] == "local"]
    assert [i["id"] for i in on_local] == [truth], by_tag
    for ref in (f"{HTTPD}:latest", truth, truth[7:19], truth[7:13], f"sha256:{truth[7:20]}"):
        r = viewer.get(f"/api/images/{ref}", params={"node": "local"})
        assert r.status_code == 200, (ref, r.text)
        assert [i["id"] for i in r.json()["items"]] == [truth], (ref, r.json())
    v2 = viewer.get(f"/api/images/{HTTPD}:v2", params={"node": "local"}).json()["items"]
    assert [i["id"] for i in v2] == [platform.docker.images.get(f"{HTTPD}:v2").id]
    # a registry's host, port and path reach the route whole, and the 404 names it
    absent = "127.0.0.1:5999/team/web:v2"
    for method in ("GET", "DELETE"):
        r = api.request(method, f"/api/images/{absent}")
        assert r.status_code == 404, (method, r.text)
        assert r.json()["detail"] == f"image {absent!r} not found", r.text
    r = viewer.get(f"/api/images/{HTTPD}", params={"node": "nosuch"})
    assert r.status_code == 404 and "nosuch" in r.json()["detail"], r.text
    for bad in ("Upper/Case", "a//b", "web:", "web@sha256:short"):
        for method in ("GET", "DELETE"):
            r = api.request(method, f"/api/images/{bad}")
            assert r.status_code == 422 and "ref" in r.json()["fields"], (method, bad, r.text)


def test_removal_is_refused_naming_the_deployment_that_uses_the_image(api, operator, platform,
                                                                      local_image):
    ref = local_image.ref
    path = f"/api/images/{ref}"  # 127.0.0.1:<port>/hm-test/<name>:v1 as it is
    listed(api, ref, "local")
    name = unique("imgdel")
    try:
        deploy_on_local(api, name, ref)
        wait_until(lambda: name in listed(api, ref, "local")["deployments"], 30,
                   "the image's deployments name it")
        r = api.delete(path)
        assert r.status_code == 409, r.text
        assert name in r.json()["detail"] and r.json()["fields"]["deployments"] == name, r.text
        # force never removes an image a running container uses
        r = api.delete(path, params={"force": "true"})
        assert r.status_code == 409 and "running" in r.json()["detail"], r.text
        assert name in r.json()["detail"], r.text
        assert operator.delete(path).status_code == 403
        r = api.delete(path, params={"node": "n2"})
        assert r.status_code == 404 and "'n2'" in r.json()["detail"], r.text
        assert platform.docker.images.get(ref).id == local_image.id

        r = api.delete(f"/api/deployments/{name}", params={"wait": 60})
        assert api.job(r)["status"] == "succeeded"
        removed = api.delete(path, params={"wait": 60})
        job = api.job(removed)
        assert removed.status_code == 200 and removed.headers["Location"] == \
            f"/api/jobs/{job['id']}"
        assert job["kind"] == "remove_image" and job["target"] == f"nodes/local/images/{ref}"
        with pytest.raises(docker.errors.ImageNotFound):
            platform.docker.images.get(local_image.id)
        assert api.get(path).status_code == 404
    finally:
        api.delete(f"/api/deployments/{name}", params={"wait": 60})


def test_a_second_tag_of_an_image_in_use_can_be_removed(api, operator, platform, local_image):
    """Removing one of an image's several tags only takes that name away (Docker untags):
    the containers made from its other name keep running, so it is not refused."""
    ref = local_image.ref
    listed(api, ref, "local")
    name = unique("imgtag")
    try:
        deploy_on_local(api, name, ref)
        alias = ref.rsplit(":", 1)[0] + ":alias"
        tagged = operator.post("/api/images/tag", params={"wait": 60},
                               json={"source": ref, "target": alias, "node": "local"})
        job = api.job(tagged)
        assert tagged.json()["jobs"][0]["id"] == job["id"], tagged.json()
        assert platform.docker.images.get(alias).id == local_image.id
        with pytest.raises(docker.errors.ImageNotFound):
            platform.engines["n2"].images.get(alias)
        assert listed(api, alias, "local")["id"] == local_image.id
        # the name the deployment uses is still refused; the alias is not
        assert api.delete(f"/api/images/{ref}").status_code == 409
        api.job(api.delete(f"/api/images/{alias}", params={"wait": 60}))
        with pytest.raises(docker.errors.ImageNotFound):
            platform.docker.images.get(alias)
        assert platform.docker.images.get(ref).id == local_image.id
    finally:
        api.delete(f"/api/deployments/{name}", params={"wait": 60})


def test_a_pull_is_one_job_per_ready_node_and_wait_holds_until_they_end(api, operator):
    # a registry address on loopback where nothing listens: each pull fails saying so
    ref = f"127.0.0.1:{free_port()}/hm-test/absent:v1"
    r = operator.post("/api/images/pull", json={"image": ref}, params={"wait": 90})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "id" not in body and "Location" not in r.headers, body  # several jobs
    assert sorted(j["target"] for j in body["jobs"]) == [f"nodes/{n}/images/{ref}"
                                                         for n in ("local", "n2")], body
    for job in body["jobs"]:
        assert job["kind"] == "pull_image" and job["status"] == "failed", job
        assert ref in job["error"] and job["requested_by"] == operator.name, job
    one = operator.post("/api/images/pull", json={"image": ref, "node": "n2"})
    assert one.status_code == 202, one.text
    assert one.json()["jobs"][0]["id"] == one.json()["id"], one.json()
    assert one.headers["Location"] == f"/api/jobs/{one.json()['id']}"
    assert operator.job(one, wait=90, expect="failed")["target"] == f"nodes/n2/images/{ref}"
    r = operator.post("/api/images/pull", json={"image": ref, "node": "nosuch"})
    assert r.status_code == 404 and "'nosuch'" in r.json()["detail"], r.text
    for body in ({"image": "Not An Image"}, {}, {"image": HTTPD, "extra": 1}):
        r = operator.post("/api/images/pull", json=body)
        assert r.status_code == 422, (body, r.text)
    r = operator.post("/api/images/tag", json={"source": ref, "target": f"{ref}-x"})
    assert r.status_code == 404 and ref in r.json()["detail"], r.text


# (method, path, body): what each role may do on the image and registry routes; the probes
# name nothing that exists or carry refused bodies, so nothing changes
ROUTES = {
    "viewer": [("GET", "/api/images", None), ("GET", f"/api/images/{HTTPD}", None),
               ("GET", "/api/images/settings", None)],
    "operator": [("POST", "/api/images/pull", {}), ("POST", "/api/images/tag", {})],
    "admin": [("POST", "/api/images/push", {}), ("DELETE", "/api/images/hm-absent/x:v9", None),
              ("POST", "/api/images/prune", {"node": "nosuch"}),
              ("PUT", "/api/images/settings", {}), ("GET", "/api/registries", None),
              ("POST", "/api/registries", {}), ("DELETE", "/api/registries/absent.local:1",
                                                None)],
}
RANK = ("viewer", "operator", "admin")


def test_each_route_needs_its_role(api, operator, viewer, anonymous):
    clients = {"viewer": viewer, "operator": operator, "admin": api}
    wrong = []
    for needed, routes in ROUTES.items():
        for method, path, body in routes:
            if anonymous.request(method, path, json=body).status_code != 401:
                wrong.append(f"anonymous {method} {path}: not 401")
            for who, client in clients.items():
                status = client.request(method, path, json=body).status_code
                allowed = RANK.index(who) >= RANK.index(needed)
                if allowed != (status not in (401, 403) and status < 500) or \
                        (not allowed and status != 403):
                    wrong.append(f"{who} {method} {path}: {status}")
    assert not wrong, "\n".join(wrong)


def test_the_cache_size_is_set_at_runtime(api, viewer):
    before = viewer.get("/api/images/settings").json()
    try:
        r = api.put("/api/images/settings", json={"cache_size": "64m"})
        assert r.status_code == 200 and r.json()["cache_size"] == 64 * 1024 * 1024, r.text
        assert r.json()["effective_cache_size"] == 64 * 1024 * 1024
        assert viewer.get("/api/images/settings").json()["cache_size"] == 64 * 1024 * 1024
        r = api.put("/api/images/settings", json={"cache_size": None})
        assert r.json()["cache_size"] is None
        assert r.json()["effective_cache_size"] == r.json()["configured_cache_size"]
        for bad in ({}, {"cache_size": "lots"}, {"cache_size": -1}):
            r = api.put("/api/images/settings", json=bad)
            assert r.status_code == 422 and "cache_size" in r.json()["fields"], (bad, r.text)
        events = api.get("/api/events", params={"kind": "image_cache_size_set"}).json()["items"]
        assert [e["detail"]["cache_size"] for e in events][-2:] == [64 * 1024 * 1024, None]
        assert events[-1]["who"] == "admin", events  # the session's first admin token
    finally:
        api.put("/api/images/settings", json={"cache_size": before["cache_size"]})


def test_registry_credentials_are_stored_and_their_password_never_shown(api, platform):
    password = f"pw-{uuid.uuid4().hex}"
    registry = f"registry-{uuid.uuid4().hex[:6]}.local:5000"
    body = {"registry": registry, "username": "team", "password": password}
    try:
        r = api.post("/api/registries", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["registry"] == registry and r.json()["username"] == "team"
        assert r.json()["created_by"], r.text
        again = api.post("/api/registries", json={**body, "username": "team2"})
        assert again.status_code == 200 and again.json()["username"] == "team2", again.text
        listed_ = api.get("/api/registries").json()["items"]
        assert [(i["registry"], i["username"]) for i in listed_ if i["registry"] == registry] \
            == [(registry, "team2")]
        answers = [r.text, again.text, api.get("/api/registries").text]
        # refused bodies do not echo it either
        for bad in ({**body, "registry": "myregistry"}, {**body, "registry": "host:99999"},
                    {**body, "extra": password}, {**body, "username": ""}):
            refused = api.post("/api/registries", json=bad)
            assert refused.status_code == 422, (bad, refused.text)
            answers.append(refused.text)
        assert "registry" in api.post("/api/registries", json={
            **body, "registry": "myregistry"}).json()["fields"]
        for listing in ("/api/events?limit=1000", "/api/audit?limit=1000", "/api/jobs?limit=500",
                        "/api/summary"):
            answers.append(api.get(listing).text)
        assert not [a for a in answers if password in a]
        stored = platform.sql("SELECT username, password FROM registry_credentials"
                              " WHERE registry = %s", (registry,))
        assert stored == [("team2", password)]  # where the executor reads it
        tables = [t for (t,) in platform.sql("SELECT table_name FROM information_schema.tables"
                                             " WHERE table_schema = 'public'")]
        for table in tables:
            dump = json.dumps(platform.sql(f'SELECT * FROM "{table}"'), default=str)
            assert (password in dump) == (table == "registry_credentials"), table
        assert password not in platform.logs()
        gone = api.delete(f"/api/registries/{registry}")
        assert gone.status_code == 200 and gone.json()["registry"] == registry, gone.text
        assert api.delete(f"/api/registries/{registry}").status_code == 404
        assert registry not in api.get("/api/registries").text
        assert api.delete("/api/registries/not_a_host").status_code == 422
    finally:
        api.delete(f"/api/registries/{registry}")


def docker_usable(api, node: str) -> bool:
    """What web decides from: the node's heartbeat says its Docker answers."""
    shown = api.get(f"/api/nodes/{node}").json()
    return shown["docker"]["ok"] and shown["ready"]


@pytest.mark.disruptive
def test_work_for_a_node_whose_docker_is_cut_answers_503_naming_it(api, operator, platform):
    ref = f"127.0.0.1:{free_port()}/hm-test/absent:v1"
    platform.proxy.cut()
    try:
        # no job is sent to local until its heartbeat says Docker is back
        wait_until(lambda: not docker_usable(api, "local"), 20, "local's Docker reported cut")
        r = operator.post("/api/images/pull", json={"image": ref, "node": "local"})
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "dependency_unavailable" and "'local'" in r.json()["detail"]
        # without a node: the ready ones only
        r = operator.post("/api/images/pull", json={"image": ref}, params={"wait": 60})
        assert [j["target"] for j in r.json()["jobs"]] == [f"nodes/n2/images/{ref}"], r.text
        r = api.post("/api/images/prune", json={"node": "local"})
        assert r.status_code == 503 and "'local'" in r.json()["detail"], r.text
        assert api.get("/api/images", params={"node": "local"}).status_code == 200
    finally:
        platform.proxy.restore()
    wait_until(lambda: docker_usable(api, "local"), 60, "local's Docker reported back")
    api.job(operator.post("/api/images/pull", json={"image": ref, "node": "local"},
                          params={"wait": 60}), expect="failed")
