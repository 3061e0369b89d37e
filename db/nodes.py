"""Nodes: one row per Docker engine with its worker and agent: the agent's heartbeat and what
`docker info` says, what an operator set (availability, label and capacity overrides), its
status (ready, down, returning) and epoch (raised when declared down: fencing)."""
from __future__ import annotations

from psycopg.types.json import Jsonb

from db import pool

COLUMNS = ("*, extract(epoch FROM now() - heartbeat_at) AS age,"
           " labels || label_overrides AS all_labels")
# instances and standalone containers that hold a place on their node
HOLDS_PLACE = ("state NOT IN ('removed', 'stopped', 'error', 'unknown')"
               " AND role IN ('active', 'warm')")


def heartbeat(name: str, docker_ok: bool, latency_ms: float | None, error: str | None,
              info: dict, address: str, labels: dict, agent_pid: int,
              volumes: list[str] | None = None) -> dict:
    """The agent's beat: Docker's health and figures, and the engine's volume names (None:
    not known this beat, the last ones stay). The status is check_nodes' to change;
    docker_down_since counts how long Docker has been unusable."""
    return pool.fetchone(
        "INSERT INTO nodes (name, docker_ok, docker_latency_ms, docker_error, docker_version,"
        " cpus, memory_bytes, heartbeat_at, agent_pid, address, labels, docker_down_since,"
        " volumes)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, now(), %s, %s, %s,"
        "  CASE WHEN %s THEN NULL ELSE now() END, COALESCE(%s::text[], '{}'))"
        " ON CONFLICT (name) DO UPDATE SET docker_ok = EXCLUDED.docker_ok,"
        " docker_latency_ms = EXCLUDED.docker_latency_ms, docker_error = EXCLUDED.docker_error,"
        " docker_version = COALESCE(EXCLUDED.docker_version, nodes.docker_version),"
        " cpus = COALESCE(EXCLUDED.cpus, nodes.cpus),"
        " memory_bytes = COALESCE(EXCLUDED.memory_bytes, nodes.memory_bytes),"
        " heartbeat_at = now(), agent_pid = EXCLUDED.agent_pid, address = EXCLUDED.address,"
        " labels = EXCLUDED.labels,"
        " volumes = COALESCE(%s::text[], nodes.volumes),"
        " docker_down_since = CASE WHEN EXCLUDED.docker_ok THEN NULL"
        "  ELSE COALESCE(nodes.docker_down_since, now()) END"
        f" RETURNING {COLUMNS}",
        (name, docker_ok, latency_ms, error, info.get("version"), info.get("cpus"),
         info.get("memory_bytes"), agent_pid, address, Jsonb(labels), docker_ok, volumes,
         volumes))


def get(name: str) -> dict | None:
    return pool.fetchone(f"SELECT {COLUMNS} FROM nodes WHERE name = %s", (name,))


def all_nodes() -> list[dict]:
    return pool.fetchall(f"SELECT {COLUMNS} FROM nodes ORDER BY name")


def declare_down(name: str) -> dict | None:
    """Down (once): its epoch goes up, so work planned before is dropped by its executor."""
    return pool.fetchone(
        "UPDATE nodes SET status = 'down', epoch = epoch + 1, down_since = now()"
        f" WHERE name = %s AND status <> 'down' RETURNING {COLUMNS}", (name,))


def set_status(name: str, status: str, only_from: str | None = None) -> dict | None:
    return pool.fetchone(
        "UPDATE nodes SET status = %s, down_since = CASE WHEN %s = 'down' THEN down_since"
        " ELSE NULL END WHERE name = %s AND (%s::text IS NULL OR status = %s)"
        f" RETURNING {COLUMNS}", (status, status, name, only_from, only_from))


def set_availability(name: str, availability: str, conn=None) -> dict | None:
    sql = f"UPDATE nodes SET availability = %s WHERE name = %s RETURNING {COLUMNS}"
    if conn is not None:
        return conn.execute(sql, (availability, name)).fetchone()
    return pool.fetchone(sql, (availability, name))


def update(name: str, label_overrides: dict | None = None, cpus: float | None = None,
           memory: int | None = None, clear_capacity: bool = False) -> dict | None:
    """Operator settings: labels merged over the reported ones (a null value removes an
    override), and capacity overrides."""
    return pool.fetchone(
        "UPDATE nodes SET label_overrides = CASE WHEN %s::jsonb IS NULL THEN label_overrides"
        "  ELSE jsonb_strip_nulls(label_overrides || %s::jsonb) END,"
        " cpus_override = CASE WHEN %s THEN NULL ELSE COALESCE(%s, cpus_override) END,"
        " memory_override = CASE WHEN %s THEN NULL ELSE COALESCE(%s, memory_override) END"
        f" WHERE name = %s RETURNING {COLUMNS}",
        (Jsonb(label_overrides) if label_overrides is not None else None,
         Jsonb(label_overrides) if label_overrides is not None else None,
         clear_capacity, cpus, clear_capacity, memory, name))


def delete(name: str) -> dict | None:
    """A down node with nothing left on it goes."""
    return pool.fetchone(
        "DELETE FROM nodes n WHERE name = %s AND status = 'down' AND NOT EXISTS ("
        " SELECT 1 FROM containers c WHERE c.node = n.name AND c.state <> 'removed')"
        " RETURNING name", (name,))


def usage(default_cpus: float, default_memory: int) -> dict[str, dict]:
    """node -> what is placed there: instances, CPU and memory reserved (limits, or the
    default request for a container without one), fixed host ports bound ("8080/tcp")."""
    rows = pool.fetchall(
        "SELECT node, count(*) AS instances,"
        " sum(COALESCE(COALESCE(resources->>'cpus', spec->'resources'->>'cpus')::float8, %s))"
        "  AS cpus,"
        " sum(COALESCE(COALESCE(resources->>'memory', spec->'resources'->>'memory')::int8, %s))"
        "  AS memory"
        f" FROM containers WHERE {HOLDS_PLACE} GROUP BY node", (default_cpus, default_memory))
    out = {r["node"]: {**r, "ports": set()} for r in rows}
    for node, ports in fixed_ports_of_others(None).items():
        out.setdefault(node, {"node": node, "instances": 0, "cpus": 0.0, "memory": 0})
        out[node]["ports"] = ports
    return out


def mark_instances_unknown(name: str) -> int:
    """A node that is down: nobody knows what its containers do now."""
    return pool.execute("UPDATE containers SET state = 'unknown', updated_at = now()"
                        " WHERE node = %s AND state NOT IN ('removed', 'creating')", (name,))


def record_host(name: str, cpu_percent: float, host: dict) -> None:
    pool.execute("UPDATE nodes SET host_cpu_percent = %s, host_memory_bytes = %s,"
                 " host_memory_used = %s, host_disk_bytes = %s, host_disk_used = %s,"
                 " sampled_at = now() WHERE name = %s",
                 (cpu_percent, host["memory_bytes"], host["memory_used"], host["disk_bytes"],
                  host["disk_used"], name))


def fixed_ports_of_others(deployment: str | None) -> dict[str, set]:
    """node -> the fixed host ports bound there by every container but ``deployment``'s."""
    out: dict[str, set] = {}
    for r in pool.fetchall(
            "SELECT node, value::text || '/' || COALESCE(NULLIF(split_part(key, '/', 2), ''),"
            " 'tcp') AS port FROM containers, jsonb_each(spec->'ports')"
            f" WHERE {HOLDS_PLACE} AND jsonb_typeof(value) = 'number'"
            " AND deployment IS DISTINCT FROM %s", (deployment,)):
        out.setdefault(r["node"], set()).add(r["port"])
    return out
