"""Session fixtures: one test platform for the whole run, an HTTP client, Docker."""
from __future__ import annotations

import time

import pytest

import config
from db import pool
from workers import messages
import requests

from tests.support.platform import TestPlatform

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
