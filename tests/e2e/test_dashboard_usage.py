"""The dashboard's usage panel in headless Chromium (test_dashboard's page and fixture): each
deployment's billable CPU core-hours and memory GiB-hours per hour of the last day, stacked,
as /api/usage counts them, with the capacity nothing reserved (idle) on top; drawn from the
one summary request per refresh, at 800 px."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.test_dashboard import CUT_PANELS, dashboard, deploy, remove  # noqa: F401
from tests.e2e.test_usage import settled
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
GIB = 1024 ** 3
CHARTS = """() => Object.fromEntries(Object.entries(window.usageCharts || {}).map(
  ([metric, chart]) => [metric, {dates: chart.$dates, title: chart.options.plugins.title.text,
    sets: chart.data.datasets.map(d => ({label: d.label, data: d.data, stack: d.stack}))}]))"""


def shown(charts: dict, metric: str, label: str) -> dict[str, float]:
    """A chart's bars of one series, by the hour they are (UTC)."""
    [series] = [s for s in charts[metric]["sets"] if s["label"] == label]
    return dict(zip(charts[metric]["dates"], series["data"]))


def test_usage_chart_per_deployment_with_the_idle_capacity(api, platform, dashboard):
    name = f"dashuse-{uuid.uuid4().hex[:6]}"
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    job = deploy(api, name, image="harbormaster/busybox-httpd", replicas=2,
                 resources={"cpus": 0.25, "memory": "32m"})
    assert job["status"] == "succeeded", job
    try:
        ids = [c.id for c in platform.containers(**{"harbormaster.deployment": name})]
        wait_until(lambda: any(i["ControllerName"] == name and i["CPUCoreSeconds"] > 0
                               for i in api.get("/api/usage", params={
                                   "from": since.isoformat()}).json()["items"]),
                   60, "the deployment metered")
        # its usage stops changing once its instances are gone: the chart can match it
        api.job(api.post(f"/api/deployments/{name}/scale", params={"wait": 90},
                         json={"replicas": 0}), wait=120)
        settled(platform, ids)
        usage = api.get("/api/usage", params={"from": since.isoformat()}).json()
        mine = {i["Date"]: i for i in usage["items"] if i["ControllerName"] == name}
        assert mine, usage["items"]

        view = dashboard(width=800)
        view.sign_in(platform.admin_token)
        page = view.page

        seen = {}

        def drawn():
            seen.update(charts=page.evaluate(CHARTS), banner=view.banner(),
                        answers=view.responses[-3:], errors=view.errors)
            charts = seen["charts"]
            if sorted(charts) != ["cpu", "memory"] or not any(
                    s["label"] == name for s in charts["cpu"]["sets"]):
                return None
            return charts
        try:
            charts = wait_until(drawn, 90, "the usage charts with the deployment",
                                interval=1.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the page: {seen}") from None
        cpu, memory = shown(charts, "cpu", name), shown(charts, "memory", name)
        for date, item in mine.items():
            assert cpu[date] == pytest.approx(item["CPUCoreSeconds"] / 3600, abs=1e-6)
            assert memory[date] == pytest.approx(item["RAMByteSeconds"] / GIB / 3600, abs=1e-6)
        assert all(v == 0 for d, v in cpu.items() if d not in mine)
        assert len(charts["cpu"]["dates"]) == 24 and charts["cpu"]["title"].startswith("CPU")
        assert {s["stack"] for s in charts["cpu"]["sets"]} == {"usage"}  # one stack a bar
        # the idle capacity on top: nothing reserved, on every node; never above what the
        # nodes offered (read after the chart: capacity only grows)
        idle = shown(charts, "cpu", "idle")
        now_hour = max(mine)
        capacity = sum(i["CapacityCPUCoreSeconds"] for i in api.get("/api/usage", params={
            "from": now_hour, "by": "node"}).json()["items"] if i["Date"] == now_hour) / 3600
        assert 0 < idle[now_hour] <= capacity, (idle[now_hour], capacity)
        # no request of its own: the usage comes in the one summary request (beside the
        # events panel's one live stream)
        paths = [path for _, path in view.requests]
        assert set(paths) - {"/api/events/stream"} == {"/api/summary"}, view.requests
        assert paths.count("/api/events/stream") == 1, view.requests
        assert page.evaluate("document.documentElement.scrollWidth") <= 800
        assert page.evaluate(CUT_PANELS) == []
        view.screenshot("dashboard-usage-800px.png")
    finally:
        remove(api, name)
