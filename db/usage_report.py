"""Reads of the usage rollup for the API, the CLI and the dashboard: sums of the rows of one
period length by period and group, and each node's capacity with what its instances
reserved of it.

Billable is max(requested, used) per resource, taken per instance and period before any sum
(OpenCost's rule: an allocation pays for what it reserved, or for what it used beyond)."""
from __future__ import annotations

from datetime import datetime

from db import pool

SUMS = ("sum(r.running_us) AS running_us, sum(r.paused_us) AS paused_us,"
        " sum(r.cpu_used_ns) AS cpu_used_ns, sum(r.cpu_request) AS cpu_request,"
        # core-ns -> nanocore-µs: x 1e6
        " sum(greatest(r.cpu_used_ns::numeric * 1000000, r.cpu_request)) AS cpu_billable,"
        " sum(r.memory_used) AS memory_used, sum(r.memory_request) AS memory_request,"
        " sum(greatest(r.memory_used, r.memory_request)) AS memory_billable,"
        " sum(r.net_rx) AS net_rx, sum(r.net_tx) AS net_tx")
# what each grouping keeps apart, and how many columns that is (instances forgotten past
# their retention keep their rows, under their Docker id)
GROUPS = {
    "container": ("COALESCE(i.kind, 'standalone') AS kind, i.deployment,"
                  " COALESCE(i.name, r.docker_id) AS name, r.node, r.docker_id", 5),
    "deployment": ("COALESCE(i.kind, 'standalone') AS kind, i.deployment,"
                   " CASE WHEN i.deployment IS NULL THEN COALESCE(i.name, r.docker_id) END"
                   " AS name", 3),
    "node": ("r.node", 1),
    "label": ("COALESCE(i.labels ->> %s, '__unallocated__') AS value", 1),
}


def sums(period_seconds: int, since: datetime, until: datetime, by: str,
         label: str | None = None, deployment: str | None = None) -> list[dict]:
    """Per period in [since, until) and group of ``by`` (container, deployment, node or
    label, whose key is ``label``); only ``deployment``'s instances when it is given."""
    group, count = GROUPS[by]
    positions = ", ".join(str(n) for n in range(1, count + 2))
    params = ([label] if by == "label" else []) + [period_seconds, since, until, deployment,
                                                    deployment]
    return pool.fetchall(
        f"SELECT r.period_start, {group}, {SUMS} FROM usage_rows r"
        " LEFT JOIN usage_instances i USING (node, docker_id)"
        " WHERE r.period_seconds = %s AND r.period_start >= %s AND r.period_start < %s"
        " AND (%s::text IS NULL OR i.deployment = %s)"
        f" GROUP BY {positions} ORDER BY {positions}", params)


def capacity(period_seconds: int, since: datetime, until: datetime) -> list[dict]:
    """Each node's capacity per period, and the requests of its instances there."""
    return pool.fetchall(
        "SELECT n.period_start, n.node, n.up_us, n.cpu_capacity AS cpu,"
        " n.memory_capacity AS memory, COALESCE(sum(r.cpu_request), 0) AS cpu_request,"
        " COALESCE(sum(r.memory_request), 0) AS memory_request"
        " FROM usage_node_rows n LEFT JOIN usage_rows r ON r.period_seconds = n.period_seconds"
        "  AND r.period_start = n.period_start AND r.node = n.node"
        " WHERE n.period_seconds = %s AND n.period_start >= %s AND n.period_start < %s"
        " GROUP BY n.period_start, n.node, n.up_us, n.cpu_capacity, n.memory_capacity"
        " ORDER BY n.period_start, n.node", (period_seconds, since, until))


def newest_rollup() -> datetime | None:
    """When the rollup last ran (any period length)."""
    return pool.fetchone("SELECT max(ran_at) AS at FROM usage_rollups")["at"]
