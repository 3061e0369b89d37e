"""Session fixtures: one test platform for the whole run, an HTTP client, Docker."""
from __future__ import annotations

import dataclasses
import time

import pytest

import config
from db import pool
from workers import messages
import requests

from tests.support import layers
from tests.support.platform import TestPlatform
from tests.support.registry import Registry
from tests.support.throttle import Throttle

DISRUPTIVE_LAST = "disruptive"
VERY_LAST = "last"   # after the disruptive ones too: what restarts Postgres
ENDED = ("succeeded", "failed", "cancelled")
SESSION_STARTED = time.monotonic()  # the suite's wall time counts from here (conftest import)


def pytest_configure(config):
    config.addinivalue_line("markers", "disruptive: kills processes or cuts Docker (runs last)")
    config.addinivalue_line("markers", "e2e: needs the running platform and Docker")
    config.addinivalue_line("markers", "last: restarts what every process needs (runs at the "
                            "very end)")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    # printed after the session platform's teardown (both engines) has run
    terminalreporter.write_line(f"suite wall time: {time.monotonic() - SESSION_STARTED:.1f} s")


def pytest_collection_modifyitems(session, config, items):
    # unit tests first, then everything else, then what kills processes or cuts Docker,
    # then what restarts Postgres
    def rank(item):
        if item.get_closest_marker(VERY_LAST):
            return 3
        if item.get_closest_marker(DISRUPTIVE_LAST):
            return 2
        return 0 if "/unit/" in str(item.fspath) else 1
    items.sort(key=rank)


class Api:
    """A small HTTP client for the platform under test."""

    def __init__(self, base: str, token: str | None = None):
        self.base = base
        self.session = requests.Session()
        self.token = token
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 90)
        return self.session.request(method, self.base + path, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def job(self, response: requests.Response, wait: float = 60,
            expect: str = "succeeded") -> dict:
        """Follow a 202 until its job ends; assert it ended as ``expect`` (a test that
        provokes a failure says so: ``expect="failed"``); return the job."""
        assert response.status_code in (200, 202), response.text
        job = response.json()
        deadline = time.monotonic() + wait
        while job["status"] not in ENDED and time.monotonic() < deadline:
            # the server caps each wait (HARBORMASTER_WAIT_CAP): ask again until the deadline
            left = max(1, min(50, deadline - time.monotonic()))
            job = self.get(f"/api/jobs/{job['id']}", params={"wait": round(left)}).json()
        assert job["status"] in ENDED, f"job not ended after {wait}s: {job}"
        assert job["status"] == expect, f"job {expect!r} expected: {job}"
        return job


@pytest.fixture(scope="session")
def platform():
    plat = TestPlatform()
    try:
        plat.start()
        # the test process's own database access and broker (db-level tests, test hooks)
        cfg = config.from_env(plat.env)
        pool.configure(cfg)
        messages.configure(cfg)
        yield plat
    finally:
        plat.teardown()


@pytest.fixture(scope="session")
def api(platform):
    """A client holding the first admin token (written by the release step)."""
    return Api(platform.url, platform.admin_token)


@pytest.fixture(scope="session")
def make_client(platform, api):
    """Create a token with a role (and options) and return a client holding it."""
    def make(role: str, **options) -> Api:
        import uuid
        body = {"name": f"{role}-{uuid.uuid4().hex[:8]}", "role": role, **options}
        r = api.post("/api/tokens", json=body)
        assert r.status_code == 201, r.text
        client = Api(platform.url, r.json()["token"])
        client.token_id, client.name = r.json()["id"], r.json()["name"]
        return client
    return make


@pytest.fixture(scope="session")
def operator(make_client):
    return make_client("operator")


@pytest.fixture(scope="session")
def viewer(make_client):
    return make_client("viewer")


@pytest.fixture(scope="session")
def anonymous(platform):
    return Api(platform.url)


# --- images: a real registry, a throttle in front of it, images of one test -------------

THROTTLE_RATE = 3 * 1024 * 1024  # bytes/s: a 24 MiB layer takes ~8 s to come through


@pytest.fixture(scope="session")
def registry():
    """A real registry on 127.0.0.1 with htpasswd auth (tests.support.registry), started by
    the first test that asks for it; every engine of the session pulls from it."""
    reg = Registry()
    try:
        reg.start()
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def throttle(registry):
    """A throttling proxy in front of the registry for one test (``throttle.host`` instead of
    ``registry.host``; ``throttle.rate`` settable); a proxy thread that died fails the test."""
    proxy = Throttle(registry.host, rate=THROTTLE_RATE)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def make_image(platform, registry):
    """make_image(name=None, tag="v1", random_bytes=24 MiB, push=True, keep=False): an image
    with a unique random layer (tests.support.layers), built on local's engine, tagged for
    the registry and pushed with its credentials; once pushed it is removed from the engine
    (unless ``keep``), so that a pull moves its bytes. With push=False it is only on local's
    engine. After the test every copy is removed from both engines by its label."""
    made = []

    def make(name=None, tag="v1", random_bytes=24 * layers.MIB, push=True, keep=False):
        image = layers.build(platform.docker, registry.host, name, tag, random_bytes)
        made.append(image.ident)
        if push:
            image = dataclasses.replace(image, digest=registry.push(platform.docker, image.ref))
            if not keep:
                assert layers.remove([platform.docker], [image.ident]) == []
        return image

    yield make
    engines = [client for node, client in platform.engines.items()
               if platform.n2 is None or node != platform.n2.name
               or not platform.n2.engine_killed]
    remove_users(platform, engines, made)
    errors = layers.remove(engines, made)
    assert not errors, f"test images not removed: {errors}"


@pytest.fixture(autouse=True)
def leaves_nothing_behind(request):
    """What a test made on the session platform (deployments, standalone containers) is
    removed after it through the API, and the test waits until it is gone: the next test
    starts on a platform as quiet as the first one did (a drain, a node loss or a sampler
    sees only what its own test made). Tests that remove their own leave nothing here."""
    if "platform" not in request.fixturenames:
        yield
        return
    plat = request.getfixturevalue("platform")
    before = made_on(plat)
    yield
    left = made_on(plat) - before
    if not left:
        return
    client = Api(plat.url, plat.admin_token)
    for kind, name in sorted(left):
        path = f"/api/deployments/{name}" if kind == "deployment" else \
            f"/api/containers/{name}?force=true"
        r = client.delete(path)
        assert r.status_code in (202, 404), f"cleanup of {kind} {name}: {r.text}"
    deadline = time.monotonic() + 120
    while made_on(plat) & left:
        assert time.monotonic() < deadline, f"not removed after the test: {made_on(plat) & left}"
        time.sleep(0.25)


def made_on(plat) -> set[tuple[str, str]]:
    rows = plat.sql("SELECT 'deployment', name FROM deployments UNION ALL SELECT 'container',"
                    " name FROM containers WHERE kind = 'standalone' AND state <> 'removed'")
    return {(kind, name) for kind, name in rows}


def remove_users(platform, engines, idents: list[str]) -> None:
    """The deployments and containers of this platform running a test's images are removed
    through the API before the images (this runs before leaves_nothing_behind would)."""
    client = Api(platform.url, platform.admin_token)
    paths = set()
    for engine in engines:
        for ident in idents:
            for image in engine.images.list(filters={"label": f"{layers.LABEL}={ident}"}):
                for used in engine.containers.list(all=True, filters={"ancestor": image.id}):
                    labels = used.labels
                    if labels.get("harbormaster.cluster") != platform.cluster_id:
                        continue
                    if labels.get("harbormaster.deployment"):
                        paths.add(f"/api/deployments/{labels['harbormaster.deployment']}")
                    else:
                        paths.add(f"/api/containers/{labels['harbormaster.name']}?force=true")
    for path in sorted(paths):
        r = client.delete(path, params={"wait": 60})
        assert r.status_code in (200, 202, 404), f"{path}: {r.text}"
