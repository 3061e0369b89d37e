"""How metered usage is reported: the rows of a request grouped by deployment, node, label or
container with their billable figures and the idle capacity, and the dashboard's chart of the
last day. Used by the usage blueprint and the dashboard summary."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from core.billing import FIGURES, GIB, IDLE_FIGURES, Prices, figures, idle
from db import usage_report
from web.context import settings

GROUP_COLUMNS = {
    "container": ("ControllerKind", "ControllerName", "Container", "Node", "ContainerID"),
    "deployment": ("ControllerKind", "ControllerName", "Container"),
    "node": ("Node",),
    "label": ("LabelKey", "LabelValue"),
}


def stamp(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def group_values(by: str, row: dict, label: str | None) -> dict:
    if by == "node":
        return {"Node": row["node"]}
    if by == "label":
        return {"LabelKey": label, "LabelValue": row["value"]}
    values = {"ControllerKind": row["kind"], "ControllerName": row["deployment"] or "",
              "Container": row["name"] or ""}
    if by == "container":
        values.update(Node=row["node"], ContainerID=row["docker_id"])
    return values


def report(by: str, length: int, since: datetime, until: datetime,
           deployment: str | None = None) -> dict:
    """The rows of one request: columns, items (one per period and group) and idle."""
    kind, _, label = by.partition(":")
    cfg = settings()
    prices = Prices(cfg.price_cpu_core_hour, cfg.price_memory_gb_hour)
    items = [{"Date": stamp(row["period_start"]), **group_values(kind, row, label or None),
              **figures(row, prices)}
             for row in usage_report.sums(length, since, until, kind, label or None, deployment)]
    idle_rows = [{"Date": stamp(row["period_start"]), "Node": row["node"], **idle(row, row)}
                 for row in usage_report.capacity(length, since, until)]
    columns = ["Date", *GROUP_COLUMNS[kind], *FIGURES]
    if kind == "node":
        items = merged_with_idle(items, idle_rows)
        columns += IDLE_FIGURES
    return {"columns": columns, "items": items, "idle": idle_rows}


def merged_with_idle(items: list[dict], idle_rows: list[dict]) -> list[dict]:
    """Node rows with their idle figures (a node nothing ran on has its capacity too)."""
    zero = {name: 0.0 for name in FIGURES if name != "Cost"}
    zero.update(NetworkReceiveBytes=0, NetworkTransferBytes=0, Cost=None)
    by_key = {(i["Date"], i["Node"]): i for i in items}
    for row in idle_rows:
        base = by_key.setdefault((row["Date"], row["Node"]),
                                 {"Date": row["Date"], "Node": row["Node"], **zero})
        base.update({k: row[k] for k in IDLE_FIGURES})
    empty = {k: None for k in IDLE_FIGURES}
    return [{**empty, **item} for _, item in sorted(by_key.items())]


def chart(periods: int = 24) -> dict:
    """The dashboard's usage chart: billable CPU core-hours and memory GiB-hours per hour of
    the last day, one series per deployment (standalone containers together), and the
    capacity nothing reserved (idle) on every node."""
    length = settings().usage_periods[0]
    now = datetime.now(timezone.utc)
    first = int(now.timestamp()) // length * length - (periods - 1) * length
    since = datetime.fromtimestamp(first, timezone.utc)
    dates = [stamp(since + timedelta(seconds=k * length)) for k in range(periods)]
    index = {date: k for k, date in enumerate(dates)}
    shown = report("deployment", length, since, now + timedelta(seconds=1))
    series: dict[str, dict] = {}
    for item in shown["items"]:
        name = item["ControllerName"] if item["ControllerKind"] == "deployment" else None
        line = series.setdefault(name or "", {"name": name, "cpu": [0.0] * periods,
                                              "memory": [0.0] * periods})
        line["cpu"][index[item["Date"]]] += item["CPUCoreSeconds"] / 3600
        line["memory"][index[item["Date"]]] += item["RAMByteSeconds"] / GIB / 3600
    idle = {"cpu": [0.0] * periods, "memory": [0.0] * periods}
    for row in shown["idle"]:
        idle["cpu"][index[row["Date"]]] += row["IdleCPUCoreSeconds"] / 3600
        idle["memory"][index[row["Date"]]] += row["IdleRAMByteSeconds"] / GIB / 3600
    rounded = lambda values: [round(v, 6) for v in values]  # noqa: E731
    return {"period_seconds": length, "dates": dates,
            "deployments": [{**line, "cpu": rounded(line["cpu"]),
                             "memory": rounded(line["memory"])}
                            for _, line in sorted(series.items())],
            "idle": {k: rounded(v) for k, v in idle.items()}}
