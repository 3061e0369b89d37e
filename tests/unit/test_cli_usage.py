"""`harbormaster usage`'s table: times in the unit that reads best, each grouping's columns,
a standalone container marked in the deployment column, and node rows' idle capacity."""
from __future__ import annotations

from cli.usage import headers, row, seconds

ITEM = {"Date": "2026-11-30T16:00:00Z", "ControllerKind": "deployment", "ControllerName": "web",
        "Container": "", "ContainerSeconds": 59.94, "PausedSeconds": 0.0,
        "CPUCoreUsageSeconds": 12.3456, "CPUCoreRequestSeconds": 29.97, "CPUCoreSeconds": 29.97,
        "RAMBytesUsageAverage": 2 * 2 ** 20, "RAMBytesRequestAverage": 64 * 2 ** 20,
        "RAMByteSeconds": 64 * 2 ** 20 * 59.94, "NetworkReceiveBytes": 2048,
        "NetworkTransferBytes": 0, "Cost": None}


def test_seconds_read_as_seconds_minutes_or_hours():
    assert [seconds(v) for v in (0, 59.94, 119.9, 750, 7200, 11520)] == [
        "0.0s", "59.9s", "119.9s", "12.5m", "2.00h", "3.20h"]


def test_a_deployment_row_and_its_headers_line_up():
    cells = row("deployment", ITEM)
    assert len(cells) == len(headers("deployment"))
    assert cells[:5] == ["2026-11-30 16:00", "web", "", "59.9s", "0.0s"]
    assert cells[5:8] == ["12.35", "29.97", "29.97"]
    assert cells[8:10] == ["2MiB", "64MiB"] and cells[-1] == ""


def test_a_standalone_container_is_its_own_row():
    cells = row("deployment", {**ITEM, "ControllerKind": "standalone", "ControllerName": "",
                               "Container": "job-1"})
    assert cells[1:3] == ["-", "job-1"]


def test_node_rows_show_the_idle_capacity_and_labels_their_key():
    node = {**ITEM, "Node": "n2", "IdleCPUCoreSeconds": 3600.0,
            "IdleRAMByteSeconds": 2 * 1024 ** 3 * 3600}
    cells = row("node", node)
    assert len(cells) == len(headers("node")) and cells[1] == "n2"
    assert cells[-2:] == ["3600", "2"] and headers("node")[-2:] == ["idle cpu", "idle GiB-h"]
    assert headers("label:team")[1] == "team"
