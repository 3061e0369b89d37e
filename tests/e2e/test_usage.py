"""Usage metering through the real processes (issue 17's "Must show"): a 0.5-CPU burner and an
idle container against their cgroups' own counters and Docker's StartedAt/FinishedAt, a
container shorter than the sampling interval, per-deployment sums over instances on both
nodes with the CSV beside the JSON, and usage across a Postgres restart (the very last test);
a closed period and a late sample are test_usage_periods'."""
from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.platform import TestPlatform
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
BURN = "harbormaster/busybox-burn"
HTTPD = "harbormaster/busybox-httpd"
SUMMED = ("ContainerSeconds", "PausedSeconds", "CPUCoreUsageSeconds", "CPUCoreRequestSeconds",
          "CPUCoreSeconds", "RAMByteUsageSeconds", "RAMByteRequestSeconds", "RAMByteSeconds",
          "NetworkReceiveBytes", "NetworkTransferBytes")
HOUR = 3600


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def docker_time(text: str) -> datetime:
    """Docker's RFC 3339 time with nanoseconds, to the microsecond."""
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")


def cgroup_cpu_ns(pid: int) -> int:
    """The container's own CPU counter, from its cgroup as the kernel keeps it: cpuacct.usage
    under cgroup v1, cpu.stat's usage_usec under v2 (found through /proc/<pid>/cgroup)."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "cpuacct" in controllers.split(","):
            for directory in (controllers, "cpuacct", "cpu,cpuacct"):
                counter = Path("/sys/fs/cgroup", directory, path.lstrip("/"), "cpuacct.usage")
                if counter.exists():
                    return int(counter.read_text())
    for line in lines:
        if line.startswith("0::"):
            stat = Path("/sys/fs/cgroup", line[3:].lstrip("/"), "cpu.stat").read_text()
            usec = dict(row.split() for row in stat.splitlines())["usage_usec"]
            return int(usec) * 1000
    raise AssertionError(f"no CPU counter for pid {pid}: {lines}")


def start_container(api, name: str, image: str, **body) -> None:
    r = api.post("/api/containers", params={"wait": 60},
                 json={"name": name, "image": image, "node": "local", **body})
    api.job(r)


def remove_container(api, name: str) -> None:
    r = api.delete(f"/api/containers/{name}", params={"wait": 60, "force": "true"})
    assert r.status_code in (200, 202, 404), r.text


def metered(api, docker_id: str, since: datetime) -> dict:
    """One container's usage over every hour since ``since``: its rows summed."""
    items = api.get("/api/usage", params={"by": "container", "from": since.isoformat()}
                    ).json()["items"]
    rows = [i for i in items if i["ContainerID"] == docker_id]
    return {key: sum(r[key] for r in rows) for key in SUMMED} | {"rows": len(rows)}


def settled(platform, docker_ids: list[str], timeout: float = 120) -> None:
    """Every run of these containers has its end recorded, and the rollup ran after that."""
    def ended():
        rows = platform.sql("SELECT count(*) FILTER (WHERE ended_at IS NULL), count(*)"
                            " FROM usage_spans WHERE docker_id = ANY(%s) AND kind = 'run'",
                            (docker_ids,))
        return rows[0][0] == 0 and rows[0][1] >= len(docker_ids)
    wait_until(ended, timeout, "the runs' ends recorded", interval=0.5)
    seen = platform.sql("SELECT now()")[0][0]
    wait_until(lambda: platform.sql("SELECT ran_at FROM usage_rollups WHERE period_seconds"
                                    " = %s", (HOUR,))[0][0] > seen, timeout,
               "a rollup after the ends", interval=0.5)


def lifetime(platform, name: str) -> tuple[str, float]:
    """(docker id, Docker's FinishedAt - StartedAt in seconds) of an ended container."""
    state = platform.inspect(name)
    span = docker_time(state["State"]["FinishedAt"]) - docker_time(state["State"]["StartedAt"])
    return state["Id"], span.total_seconds()


def start_burning(api, platform, name: str) -> tuple[int, int]:
    """A burner made to wait (the image burns while /tmp/idle is absent) until its cgroup's
    counter is read: (its pid, that counter); then it burns."""
    start_container(api, name, BURN, resources={"cpus": 0.5}, command=[
        "sh", "-c", "touch /tmp/idle; while :; do if [ -e /tmp/idle ]; then sleep 1; fi; done"])
    pid = platform.inspect(name)["State"]["Pid"]
    counted_from = cgroup_cpu_ns(pid)
    done = api.post(f"/api/containers/{name}/exec", params={"wait": 60},
                    json={"command": ["rm", "/tmp/idle"]})
    assert done.status_code == 200 and done.json()["exit_code"] == 0, done.text
    return pid, counted_from


def stop_burning(api, platform, name: str, pid: int) -> int:
    """Make the burner idle again, and read its cgroup's counter once it has stopped moving
    (what it used up to its kill)."""
    done = api.post(f"/api/containers/{name}/exec", params={"wait": 60},
                    json={"command": ["touch", "/tmp/idle"]})
    assert done.status_code == 200 and done.json()["exit_code"] == 0, done.text
    reads = [(time.monotonic(), cgroup_cpu_ns(pid))]

    def still():
        at, value = time.monotonic(), cgroup_cpu_ns(pid)
        if at - reads[-1][0] < 0.4:
            return False
        reads.append((at, value))
        return value - reads[-2][1] < 5e6   # under 5 ms of CPU in half a second
    wait_until(still, 30, "the burner idle", interval=0.5)
    return reads[-1][1]


def test_a_half_cpu_burner_and_an_idle_container_for_60_s(api, platform):
    burner, idle = unique("burn"), unique("idle")
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    start_container(api, idle, HTTPD, resources={"cpus": 0.5, "memory": "64m"})
    try:
        pid, counted_from = start_burning(api, platform, burner)
        burning = time.monotonic()
        wait_until(lambda: time.monotonic() - burning >= 60, 120, "60 s of burning", interval=1)
        counted_to = stop_burning(api, platform, burner, pid)
        for name in (burner, idle):
            api.job(api.post(f"/api/containers/{name}/kill", params={"wait": 60}))
        (burner_id, burner_span), (idle_id, idle_span) = (lifetime(platform, burner),
                                                          lifetime(platform, idle))
        settled(platform, [burner_id, idle_id])
        used = metered(api, burner_id, since)
        cgroup = (counted_to - counted_from) / 1e9
        print(f"burner: metered {used['CPUCoreUsageSeconds']:.3f} core-s, cgroup {cgroup:.3f}; "
              f"ran {used['ContainerSeconds']:.3f} s, Docker {burner_span:.3f} s; requested "
              f"{used['CPUCoreRequestSeconds']:.3f} core-s")
        assert used["CPUCoreUsageSeconds"] == pytest.approx(cgroup, rel=0.03)
        assert used["ContainerSeconds"] == pytest.approx(burner_span, rel=0.02)
        assert used["CPUCoreRequestSeconds"] == pytest.approx(0.5 * used["ContainerSeconds"],
                                                              rel=0.02)
        assert used["CPUCoreSeconds"] == pytest.approx(
            max(used["CPUCoreRequestSeconds"], used["CPUCoreUsageSeconds"]), rel=1e-6)

        quiet = metered(api, idle_id, since)
        print(f"idle: metered {quiet['CPUCoreUsageSeconds']:.4f} core-s used of "
              f"{quiet['CPUCoreRequestSeconds']:.3f} requested, billable "
              f"{quiet['CPUCoreSeconds']:.3f}; ran {quiet['ContainerSeconds']:.3f} s, Docker "
              f"{idle_span:.3f} s")
        assert quiet["ContainerSeconds"] == pytest.approx(idle_span, rel=0.02)
        assert quiet["CPUCoreUsageSeconds"] < 0.01 * quiet["CPUCoreRequestSeconds"]
        assert quiet["CPUCoreSeconds"] == pytest.approx(quiet["CPUCoreRequestSeconds"])
        assert quiet["RAMByteSeconds"] == pytest.approx(quiet["RAMByteRequestSeconds"])
        assert quiet["RAMByteRequestSeconds"] == pytest.approx(
            64 * 2 ** 20 * quiet["ContainerSeconds"], rel=0.02)
    finally:
        remove_container(api, burner)
        remove_container(api, idle)


@pytest.fixture(scope="module")
def unsampled():
    """A platform of its own whose sampler never runs during the test (its interval is an
    hour): what it meters of a container comes from the container's events alone."""
    from tests.conftest import Api
    plat = TestPlatform(second_node=False, extra_env={
        "HARBORMASTER_SAMPLE_INTERVAL": "3600", "HARBORMASTER_USAGE_ROLLUP_INTERVAL": "1"})
    try:
        plat.start()
        yield plat, Api(plat.url, plat.admin_token)
    finally:
        plat.teardown()


def test_a_container_shorter_than_the_sampling_interval_is_billed_its_seconds(unsampled):
    platform, api = unsampled
    name = unique("brief")
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    start_container(api, name, "harbormaster/busybox-exit", command=["sh", "-c", "sleep 3"],
                    resources={"cpus": 0.5, "memory": "32m"})
    try:
        wait_until(lambda: platform.inspect(name)["State"]["Status"] == "exited", 60,
                   f"{name} exited by itself")
        docker_id, span = lifetime(platform, name)
        settled(platform, [docker_id])
        billed = metered(api, docker_id, since)
        sampled = platform.sql("SELECT count(*) FROM health_snapshots WHERE docker_id = %s"
                               " AND source <> 'final'", (docker_id,))[0][0]
        print(f"{name}: Docker {span:.3f} s, billed {billed['ContainerSeconds']:.3f} s, "
              f"{billed['CPUCoreRequestSeconds']:.3f} core-s requested, {sampled} samples")
        assert sampled == 0
        assert 2.9 < span < 10
        assert billed["ContainerSeconds"] == pytest.approx(span, rel=0.02)
        assert billed["CPUCoreRequestSeconds"] == pytest.approx(0.5 * span, rel=0.02)
        assert billed["RAMByteRequestSeconds"] == pytest.approx(32 * 2 ** 20 * span, rel=0.02)
        assert billed["CPUCoreSeconds"] >= billed["CPUCoreRequestSeconds"]
    finally:
        remove_container(api, name)


def instance_ids(platform, deployment: str) -> dict[str, str]:
    """docker id -> node of the deployment's containers on both engines."""
    return {c.id: c.node for c in platform.containers(**{"harbormaster.deployment": deployment})}


def test_a_deployments_rows_are_the_sums_of_its_instances_on_both_nodes(api, platform):
    name = unique("sums")
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    r = api.post("/api/deployments", params={"wait": 90}, json={
        "name": name, "image": HTTPD, "replicas": 4, "resources": {"cpus": "0.1"},
        "update": {"monitor": 0.5}})
    assert api.job(r, wait=120)["status"] == "succeeded"
    try:
        ids = instance_ids(platform, name)
        assert sorted(set(ids.values())) == ["local", "n2"], ids
        wait_until(lambda: all(metered(api, i, since)["CPUCoreUsageSeconds"] > 0 for i in ids),
                   60, "every instance metered")
        api.job(api.post(f"/api/deployments/{name}/scale", params={"wait": 90},
                         json={"replicas": 0}), wait=120)
        wait_until(lambda: not any(c.status == "running" for c in platform.containers(
            **{"harbormaster.deployment": name})), 60, "the instances stopped")
        settled(platform, list(ids))
        params = {"from": since.isoformat()}
        containers = api.get("/api/usage", params={**params, "by": "container"}).json()
        deployments = api.get("/api/usage", params={**params, "by": "deployment"}).json()
        again = api.get("/api/usage", params={**params, "by": "container"}).json()
        assert again["items"] == containers["items"]  # nothing moved between the reads
        mine = [i for i in containers["items"] if i["ControllerName"] == name]
        assert {i["ContainerID"] for i in mine} == set(ids)
        assert {i["Node"] for i in mine} == {"local", "n2"}
        rows = [d for d in deployments["items"] if d["ControllerName"] == name]
        assert rows and all(d["ControllerKind"] == "deployment" for d in rows)
        for row in rows:
            parts = [i for i in mine if i["Date"] == row["Date"]]
            for key in SUMMED:
                assert row[key] == pytest.approx(sum(p[key] for p in parts), rel=1e-9,
                                                 abs=1e-5), key
        print(f"{name}: {len(mine)} instance rows over {len(rows)} hour(s), "
              f"{sum(r['ContainerSeconds'] for r in rows):.2f} s, "
              f"{sum(r['CPUCoreSeconds'] for r in rows):.3f} billable core-s")

        text = api.get("/api/usage", params={**params, "by": "deployment"},
                       headers={"Accept": "text/csv"})
        assert text.headers["Content-Type"].startswith("text/csv")
        assert api.get("/api/usage", params={**params, "by": "deployment",
                                             "format": "csv"}).text == text.text
        parsed = list(csv.DictReader(io.StringIO(text.text)))
        assert list(parsed[0]) == deployments["columns"]
        assert len(parsed) == len(deployments["items"])
        for row, item in zip(parsed, deployments["items"]):
            for column in deployments["columns"]:
                shown = item[column]
                if shown is None or isinstance(shown, str):
                    assert row[column] == (shown or ""), column
                else:
                    assert float(row[column]) == shown, column
    finally:
        api.delete(f"/api/deployments/{name}", params={"wait": 60})


@pytest.mark.disruptive
@pytest.mark.last
def test_usage_across_a_postgres_restart_misses_nothing_the_counters_cover(api, platform):
    # the scheduler's leader lock goes with its connection: it exits, and its supervisor
    # starts it again (a standby would take over); nothing else may fail
    platform.expect_restart("scheduler")
    name = unique("pgburn")
    since = datetime.now(timezone.utc) - timedelta(minutes=1)
    pid, counted_from = start_burning(api, platform, name)
    try:
        docker_id = platform.inspect(name)["Id"]
        wait_until(lambda: metered(api, docker_id, since)["CPUCoreUsageSeconds"] > 0, 60,
                   "metered before the restart", interval=0.5)
        platform.stop_postgres()
        try:
            down_from = cgroup_cpu_ns(pid)
            wait_until(lambda: cgroup_cpu_ns(pid) - down_from >= 3e9, 120,
                       "3 core-s burned while Postgres is down", interval=0.5)
        finally:
            platform.start_postgres()
        wait_until(platform.ready, 120, "the platform back after the restart")
        # the web's pool reconnects, and the node, declared down if its heartbeats could not
        # be written long enough, has returned: Docker work on it is accepted again
        wait_until(lambda: (lambda r: r.status_code == 200 and r.json()["status"] == "ready"
                            and r.json()["ready"])(api.get("/api/nodes/local")), 180,
                   "the API answering and node local ready again")
        back = platform.sql("SELECT now()")[0][0]
        wait_until(lambda: platform.sql(
            "SELECT count(*) FROM health_snapshots WHERE docker_id = %s AND at > %s"
            " AND cpu_ns IS NOT NULL", (docker_id, back))[0][0] >= 2, 120, "sampled again")
        counted_to = stop_burning(api, platform, name, pid)
        api.job(api.post(f"/api/containers/{name}/kill", params={"wait": 60}))
        docker_id, span = lifetime(platform, name)
        settled(platform, [docker_id], timeout=180)
        used = metered(api, docker_id, since)
        # the outage may leave the node's heartbeat stale long enough for it to be declared
        # down: billed time stops then (what the counters measured does not)
        state = platform.inspect(name)["State"]
        lost = float(platform.sql(
            "SELECT COALESCE(sum(extract(epoch FROM LEAST(COALESCE(up_at, now()), %s)"
            " - GREATEST(down_at, %s))), 0) FROM node_outages WHERE node = 'local'"
            " AND down_at < %s AND COALESCE(up_at, now()) > %s",
            (docker_time(state["FinishedAt"]), docker_time(state["StartedAt"]),
             docker_time(state["FinishedAt"]), docker_time(state["StartedAt"])))[0][0])
        times = [r[0] for r in platform.sql(
            "SELECT at FROM health_snapshots WHERE docker_id = %s AND cpu_ns IS NOT NULL"
            " ORDER BY at", (docker_id,))]
        gap = max((b - a).total_seconds() for a, b in zip(times, times[1:]))
        cgroup = (counted_to - counted_from) / 1e9
        print(f"{name}: no sample for {gap:.1f} s; metered {used['CPUCoreUsageSeconds']:.3f} "
              f"core-s, cgroup {cgroup:.3f}; ran {used['ContainerSeconds']:.3f} s, Docker "
              f"{span:.3f} s less {lost:.3f} s declared down; requested "
              f"{used['CPUCoreRequestSeconds']:.3f} core-s")
        assert gap >= 5.0  # the outage left a hole in the samples: the counter covers it
        assert used["CPUCoreUsageSeconds"] == pytest.approx(cgroup, rel=0.03)
        assert used["ContainerSeconds"] == pytest.approx(span - lost, rel=0.02)
        assert used["CPUCoreRequestSeconds"] == pytest.approx(0.5 * used["ContainerSeconds"],
                                                              rel=0.02)
    finally:
        remove_container(api, name)
