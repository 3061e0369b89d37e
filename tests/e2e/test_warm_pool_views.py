"""The warm pool shown apart (issue 18, point 1): `deploy apply` sets warm_pool from a
manifest, `deploy get` and `deploy ls` show the members beside the replicas' counts, the
summary and the dashboard's deployments and instances tables show them apart too."""
from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.test_cli import cli, ok
from tests.e2e.test_dashboard import dashboard  # noqa: F401
from tests.e2e.test_warm_pool import HTTPD, delete, full_pool, get
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def pooled(platform, api):
    """One replica and a pool of 2, made by `deploy apply` from a JSON manifest."""
    name = f"shown-{uuid.uuid4().hex[:6]}"
    manifest = {"name": name, "image": HTTPD, "replicas": 1, "warm_pool": 2,
                "update": {"monitor": 0.5}}
    ok(cli(platform, "deploy", "apply", "-f", "-", stdin=json.dumps(manifest)))
    wait_until(lambda: full_pool(api, name, 2), 120, "2 members paused")
    yield name
    delete(api, name)


def test_the_cli_shows_the_pool_apart(platform, api, pooled):
    shown = ok(cli(platform, "deploy", "get", pooled))
    assert "running 1  ready 1" in shown and "warm 2/2 (paused, apart)" in shown, shown
    rows = [line.split() for line in shown.splitlines() if line.startswith(f"{pooled}-")]
    assert sorted((r[0], r[1]) for r in rows) == [(f"{pooled}-0.1", "active"),
                                                   (f"{pooled}-1.1", "warm"),
                                                   (f"{pooled}-2.1", "warm")], shown
    [row] = [line.split() for line in ok(cli(platform, "deploy", "ls")).splitlines()
             if line.startswith(pooled)]
    assert "2/2" in row, row
    # the manifest applied again with another pool size: an update, never a rollout
    generation = get(api, pooled)["generation"]
    manifest = {"name": pooled, "image": HTTPD, "replicas": 1, "warm_pool": 1,
                "update": {"monitor": 0.5}}
    ok(cli(platform, "deploy", "apply", "-f", "-", stdin=json.dumps(manifest)))
    wait_until(lambda: full_pool(api, pooled, 1), 60, "the pool down to 1")
    assert get(api, pooled)["generation"] == generation


def test_the_summary_and_the_dashboard_show_the_pool_apart(api, viewer, dashboard, pooled):
    summary = api.get("/api/summary").json()
    [dep] = [d for d in summary["deployments"] if d["name"] == pooled]
    assert dep["warm_pool"] == 2 and dep["status"]["warm"] == 2
    assert dep["status"]["running"] == 1
    roles = {i["name"]: i["role"] for i in summary["instances"] if i["deployment"] == pooled}
    assert roles == {f"{pooled}-0.1": "active", f"{pooled}-1.1": "warm",
                     f"{pooled}-2.1": "warm"}
    view = dashboard()
    view.sign_in(viewer.token)
    row = view.page.locator(f"#deployments tr[data-name='{pooled}']")
    row.wait_for()
    view.page.wait_for_function(
        "name => { const r = document.querySelector(`#deployments tr[data-name='${name}']`);"
        " return r && r.querySelector('.warm-count').textContent === 'warm 2/2'; }", arg=pooled,
        timeout=30_000)
    assert row.locator(".running-count").text_content() == "1"
    member = view.page.locator(f"#instances tr[data-name='{pooled}-1.1'] td.state")
    member.wait_for()
    assert member.text_content() == "warm pool (paused)"
