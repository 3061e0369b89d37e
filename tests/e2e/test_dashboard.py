"""The dashboard in headless Chromium (Debian's package, Playwright for Python): no request
leaves loopback; log in with a token; the graph's node ids are /api/services/map's; the
scale controls change a deployment's count; a screenshot is saved as a test artifact."""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def chromium() -> str:
    if not os.path.exists(CHROMIUM) and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                       stdout=subprocess.DEVNULL)
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed and cannot be installed here")
    return CHROMIUM


def test_dashboard_map_scale_and_screenshot(api, platform):
    from playwright.sync_api import sync_playwright

    name = unique = f"dash-{uuid.uuid4().hex[:6]}"
    r = api.post("/api/deployments", params={"wait": 60}, json={
        "name": name, "image": "harbormaster/busybox-httpd", "replicas": 1,
        "ports": {"80/tcp": None}, "update": {"monitor": 0.5},
        "service": {"name": unique, "port": 80}})
    assert r.json()["status"] == "succeeded", r.text
    wait_until(lambda: any(n["id"] == unique for n in api.get("/api/services/map").json()["nodes"]),
               20, "service on the map")
    blocked = []

    def guard(route):
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost", "::1"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.route("**/*", guard)
            page.goto(platform.url + "/")
            page.fill("#token", platform.admin_token)
            page.click("#login-form button")
            page.wait_for_selector("#app:not([hidden])")
            assert page.evaluate("sessionStorage.getItem('harbormaster-token')") == \
                platform.admin_token
            assert page.context.cookies() == []
            expected = sorted(n["id"] for n in api.get("/api/services/map").json()["nodes"])
            page.wait_for_function(
                "ids => window.cy && JSON.stringify(cy.nodes().map(n => n.id()).sort())"
                " === JSON.stringify(ids)", arg=expected, timeout=20000)
            row = page.locator(f"#deployments tr[data-name='{name}']")
            row.wait_for()
            row.locator("input.scale").fill("3")
            row.locator("button.scale-button").click()
            page.wait_for_function(
                "name => { const r = document.querySelector(`#deployments tr[data-name='${name}']`);"
                " return r && r.querySelector('.running-count').textContent === '3'; }",
                arg=name, timeout=60000)
            page.locator("#instances tr.clickable").first.click()
            page.wait_for_selector("#instance-panel:not([hidden])")
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert api.get(f"/api/deployments/{name}").json()["replicas"] == 3
    assert not blocked, blocked
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10000
