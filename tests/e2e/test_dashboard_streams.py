"""The dashboard's live streams in headless Chromium (test_dashboard's page and fixture;
issue 16, points 5 and 7): the events panel reads /api/events/stream with fetch() and the
token in a header (never in a URL), shows an event as it happens and never polls for
events; the log viewer follows a deployment (lines with their instance) and one instance,
and stopping it closes the agent's Docker log stream."""
from __future__ import annotations

import uuid

import pytest

from tests.e2e.test_dashboard import dashboard, deploy, remove  # noqa: F401
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
TICKING = ["sh", "-c", "echo booted; i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.5; done"]
LOG_LINES = "() => [...document.querySelectorAll('#log-lines div')].map(d => d.textContent)"
EVENT_LINES = "() => [...document.querySelectorAll('#events li')].map(li => li.textContent)"


def test_events_live_and_the_log_viewer(api, platform, dashboard, viewer):
    name = f"dashlog-{uuid.uuid4().hex[:6]}"
    job = deploy(api, name, image="harbormaster/busybox-httpd", replicas=1, command=TICKING)
    assert job["status"] == "succeeded", job
    view = dashboard()
    streams = []
    view.page.on("request", lambda r: streams.append((r.url, r.headers))
                 if "/logs" in r.url or "/events" in r.url else None)
    try:
        view.sign_in(viewer.token)
        view.page.locator(f"#deployments tr[data-name='{name}']").wait_for()
        # an event as it happens: a scale, seen in the panel without any request for events
        mark = len(view.requests)
        assert api.post(f"/api/deployments/{name}/scale", json={"replicas": 2},
                        params={"wait": 60}).json()["status"] == "succeeded"
        view.page.wait_for_function(
            f"() => [...document.querySelectorAll('#events li')].some(li => "
            f"li.textContent.includes('instance_created') && li.textContent.includes('{name}'))",
            timeout=30000)
        asked = [path for _, path in view.requests[mark:]]
        assert not [p for p in asked if p.startswith("/api/events")], asked
        # the deployment's log, merged: lines carry their instance
        view.page.locator(f"#deployments tr[data-name='{name}'] button.logs-button").click()
        view.page.wait_for_function(
            f"() => [...document.querySelectorAll('#log-lines div')].filter(d => "
            f"/^{name}-[01]\\.1 \\| tick /.test(d.textContent)).length >= 4", timeout=60000)
        # one instance's log, from the instance panel
        view.page.locator(f"#instances tr[data-name='{name}-0.1']").click()
        view.page.locator("#instance-logs").click()
        view.page.wait_for_function(
            "() => [...document.querySelectorAll('#log-lines div')]"
            ".some(d => /^tick \\d+$/.test(d.textContent))", timeout=60000)
        lines = view.page.evaluate(LOG_LINES)
        assert not [line for line in lines if " | " in line], lines   # only the instance's
        view.page.locator("#logs-stop").click()
        wait_until(lambda: platform.proxy.open_requests(b"follow=1") == 0
                   and platform.n2.proxy.open_requests(b"follow=1") == 0, 30,
                   "the viewer's Docker log streams closed once stopped")
    finally:
        view.page.close()
    # fetch() with the token in a header: no URL carries it
    assert streams, "no stream was requested"
    for url, headers in streams:
        assert viewer.token not in url and "token" not in url, url
        assert headers.get("authorization") == f"Bearer {viewer.token}", headers
    print(f"streams the page opened: {[u.split('/api/')[1] for u, _ in streams]}")
    remove(api, name)
