"""The dashboard's images panel in headless Chromium (test_dashboard's page and fixture): a
table per node holding what /api/images lists for it, each image's short id, tags, and the
deployment made from it, at 800 px and within the one summary request per refresh."""
from __future__ import annotations

import uuid

import pytest

from tests.e2e.test_dashboard import CUT_PANELS, dashboard, deploy, remove  # noqa: F401
from tests.support import layers
from tests.support.platform import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

IMAGE_TABLES = """() => Object.fromEntries(
  [...document.querySelectorAll('#images .node-images')].map(s => [s.dataset.node, {
    title: s.querySelector('h3').textContent,
    rows: [...s.querySelectorAll('tbody tr')].map(r => ({
      id: r.dataset.id, tags: r.querySelector('td.image').textContent,
      size: r.querySelector('td.size').textContent,
      usedBy: r.querySelector('td.used-by').textContent}))}]))"""


@pytest.fixture
def in_use(api, platform):
    """An image of this test on local only, and a deployment of it held on local."""
    image = layers.build(platform.docker, f"127.0.0.1:{free_port()}", random_bytes=4096)
    name = f"dashimg-{uuid.uuid4().hex[:6]}"
    try:
        job = deploy(api, name, image=image.ref, replicas=1,
                     placement={"constraints": ["node.name==local"]})
        assert job["status"] == "succeeded", job
        yield image, name
    finally:
        remove(api, name)
        errors = layers.remove(platform.engines.values(), [image.ident])
        assert not errors, errors


def test_images_panel_lists_each_nodes_images(api, platform, dashboard, in_use):
    image, name = in_use
    short = image.id[7:19]
    view = dashboard(width=800)
    view.sign_in(platform.admin_token)
    page = view.page

    def as_the_api_says():
        """The tables, once they show what /api/images lists per node and the deployment
        using the test's image (the agents list their engines every few seconds)."""
        expected = {node: {i["short_id"] for i in api.get(
            "/api/images", params={"node": node}).json()["items"]} for node in ("local", "n2")}
        tables = page.evaluate(IMAGE_TABLES)
        shown = {node: {r["id"] for r in t["rows"]} for node, t in tables.items()}
        mine = [r for r in tables.get("local", {}).get("rows", []) if r["id"] == short]
        return tables if shown == expected and mine and mine[0]["usedBy"] == name else None

    tables = wait_until(as_the_api_says, 60, "the image tables to show what /api/images says",
                        interval=1.0)
    [mine] = [r for r in tables["local"]["rows"] if r["id"] == short]
    assert mine["tags"] == image.ref and mine["size"].endswith("MiB"), mine
    assert short not in {r["id"] for r in tables["n2"]["rows"]}, tables["n2"]
    httpd = platform.engines["n2"].images.get("harbormaster/busybox-httpd").id[7:19]
    assert any(r["id"] == httpd and "harbormaster/busybox-httpd:latest" in r["tags"]
               for r in tables["n2"]["rows"]), tables["n2"]
    count = len(tables["local"]["rows"])
    assert tables["local"]["title"].startswith(f"local · {count} image"), tables["local"]
    # no request of its own: the images come in the one summary request
    # polls only the summary (the events panel is one stream, opened once)
    paths = [path for _, path in view.requests]
    assert set(paths) - {"/api/events/stream"} == {"/api/summary"}, view.requests
    assert paths.count("/api/events/stream") == 1, view.requests
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    assert page.evaluate(CUT_PANELS) == []
    view.screenshot("dashboard-images-800px.png")
