"""`harbormaster usage`: metered usage per hour or day (UTC) by deployment, node, container or
label, as a table for people or the API's CSV for a billing system (--csv). Running time in
seconds, CPU in core-seconds (used, requested, billable: the larger of the two), memory as
the averages while it ran and billable GiB-hours, network bytes, and the cost when the
server has prices; by node, also the capacity nothing reserved (idle)."""
from __future__ import annotations

import click

from cli import output
from cli.app import Context, main, pass_ctx

GROUPS = {"deployment": ("ControllerName", "Container"), "node": ("Node",),
          "container": ("Container", "Node"), "label": ("LabelValue",)}
GIB_HOUR = 1024 ** 3 * 3600


def seconds(value: float) -> str:
    """"59.9s", "12.5m", "3.20h": a time in the unit that reads best."""
    if value < 120:
        return f"{value:.1f}s"
    return f"{value / 60:.1f}m" if value < 7200 else f"{value / 3600:.2f}h"


def figure(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def group_cells(by: str, item: dict) -> list[str]:
    kind = by.partition(":")[0]
    cells = [item.get(column) or "" for column in GROUPS[kind]]
    if kind == "deployment" and item.get("ControllerKind") == "standalone":
        cells[0] = "-"   # a standalone container: its own row, named in the next column
    return cells


def row(by: str, item: dict) -> list:
    cells = [output.stamp(item["Date"])[:16], *group_cells(by, item),
             seconds(item["ContainerSeconds"]), seconds(item["PausedSeconds"]),
             figure(item["CPUCoreUsageSeconds"]), figure(item["CPUCoreRequestSeconds"]),
             figure(item["CPUCoreSeconds"]), output.size(round(item["RAMBytesUsageAverage"])),
             output.size(round(item["RAMBytesRequestAverage"])),
             figure(item["RAMByteSeconds"] / GIB_HOUR), output.size(item["NetworkReceiveBytes"]),
             output.size(item["NetworkTransferBytes"]), figure(item["Cost"])]
    if by == "node":
        cells += [figure(item.get("IdleCPUCoreSeconds")),
                  figure((item.get("IdleRAMByteSeconds") or 0) / GIB_HOUR)]
    return cells


def headers(by: str) -> list[str]:
    kind = by.partition(":")[0]
    names = {"ControllerName": "deployment", "Container": "container", "Node": "node",
             "LabelValue": by.partition(":")[2] or "label"}
    out = ["date (UTC)", *[names[c] for c in GROUPS[kind]], "running", "paused",
           "cpu used", "cpu req", "cpu billed", "mem used", "mem req", "mem GiB-h", "net in",
           "net out", "cost"]
    return out + (["idle cpu", "idle GiB-h"] if by == "node" else [])


@main.command()
@click.option("--from", "since", default=None,
              help="ISO time (UTC) or a duration back from now (24h, 90m) [default: 24h]")
@click.option("--to", "until", default=None, help="likewise [default: now]")
@click.option("--by", default="deployment", show_default=True,
              help="deployment, node, container or label:KEY")
@click.option("--step", type=click.Choice(["hour", "day"]), default="hour", show_default=True)
@click.option("--csv", "as_csv", is_flag=True,
              help="print the API's CSV (OpenCost's column names), for a billing system")
@pass_ctx
def usage(c: Context, since, until, by, step, as_csv):
    """Metered usage per hour or day: running time, CPU core-seconds used, requested and
    billable, memory, network, cost; by node also the idle capacity."""
    params = {k: v for k, v in {"from": since, "to": until, "by": by, "step": step}.items()
              if v is not None}
    if as_csv:
        text = c.client.request("GET", "/api/usage", params={**params, "format": "csv"}).text
        click.echo(text, nl=False)
        return
    data = c.client.get("/api/usage", params=params)
    if c.json:
        return output.emit_json(data)
    output.table(headers(by), [row(by, item) for item in data["items"]])
