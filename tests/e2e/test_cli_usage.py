"""`harbormaster usage` as a user runs it (bin/harbormaster against the session's platform):
the table shows a container's metered figures, --csv prints the API's CSV, --json its JSON,
and a bad range is one line naming the option."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.test_cli import cli, ok, unique
from tests.e2e.test_usage import HTTPD, lifetime, remove_container, settled, start_container

pytestmark = pytest.mark.e2e


def test_usage_table_csv_and_json(platform, api):
    name = unique("cliuse")
    since = (datetime.now(timezone.utc) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    start_container(api, name, HTTPD, resources={"cpus": 0.25, "memory": "32m"})
    try:
        api.job(api.post(f"/api/containers/{name}/stop", params={"wait": 60}))
        docker_id, span = lifetime(platform, name)
        settled(platform, [docker_id])
        args = ("usage", "--by", "container", "--from", since)
        answer = api.get("/api/usage", params={"by": "container", "from": since}).json()
        [mine] = [i for i in answer["items"] if i["ContainerID"] == docker_id]

        table = ok(cli(platform, *args))
        [line] = [row for row in table.splitlines() if f" {name} " in f" {row} "]
        cells = line.split()
        # date, time, container, node, running, paused, cpu used, cpu req, cpu billed, ...
        assert cells[2:4] == [name, "local"], line
        assert cells[4] == f"{mine['ContainerSeconds']:.1f}s", line
        assert cells[7] == f"{mine['CPUCoreRequestSeconds']:.4g}", line
        assert cells[8] == f"{mine['CPUCoreSeconds']:.4g}", line
        assert "cpu billed" in table.splitlines()[0], table

        text = ok(cli(platform, *args, "--csv"))
        rows = list(csv.DictReader(io.StringIO(text)))
        assert list(rows[0]) == answer["columns"]
        [row] = [r for r in rows if r["ContainerID"] == docker_id]
        assert float(row["ContainerSeconds"]) == mine["ContainerSeconds"]
        assert float(row["CPUCoreSeconds"]) == mine["CPUCoreSeconds"]

        shown = json.loads(ok(cli(platform, *args, "--json")))
        assert [i for i in shown["items"] if i["ContainerID"] == docker_id] == [mine]
    finally:
        remove_container(api, name)


def test_usage_errors_are_one_line_naming_the_option(platform):
    bad = cli(platform, "usage", "--from", "yesterday-ish")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("harbormaster: validation_failed: from:"), bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    late = cli(platform, "usage", "--from", "1h", "--to", "2h")
    assert late.returncode == 1 and "to: must be after from" in late.stderr, late.stderr
