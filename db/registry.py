"""The service registry: endpoints from deployments (kept in step with their instances),
from registrations and from the seed's /registry routes; one registry, two surfaces.

Every change of a service's endpoint set bumps that service's index (a trigger) and
NOTIFYs ``service_changed`` so blocking discovery queries wake up.
"""
from __future__ import annotations

from psycopg.types.json import Jsonb

from db import locks, pool

COLUMNS = ("id, service, version, address, port, internal, status, health, instance,"
           " deployment, source, metadata, depends_on, check_spec, last_heartbeat, created_at,"
           " updated_at, probe_node")


def sync_deployment(name: str) -> None:
    """Make the deployment's endpoints match its instances that are running and ready
    (health passing where a check exists); draining or unhealthy ones leave at once."""
    with pool.connection() as conn:
        dep = conn.execute("SELECT template, deleting FROM deployments WHERE name = %s",
                           (name,)).fetchone()
        service = (dep or {}).get("template", {}).get("service") if dep else None
        locks.in_transaction(conn, "registry", name)
        existing = {r["id"]: r for r in conn.execute(
            f"SELECT {COLUMNS} FROM endpoints WHERE deployment = %s AND source = 'deployment'",
            (name,))}
        desired = {}
        if service and not dep["deleting"]:
            has_check = bool(dep["template"].get("health_check"))
            # the replicas that run and are ready, on nodes that are (a node declared down
            # takes its endpoints out of discovery at once)
            for row in conn.execute(
                    "SELECT c.name, c.ports, c.health, n.address FROM containers c"
                    " JOIN nodes n ON n.name = c.node AND n.status = 'ready'"
                    " WHERE c.deployment = %s AND c.state = 'running' AND c.role = 'active'"
                    " AND NOT c.draining", (name,)):
                if has_check and row["health"] != "healthy":
                    continue
                host_port = (row["ports"] or {}).get(f"{service['port']}/tcp")
                desired[row["name"]] = {
                    "address": row["address"] if host_port else service["name"],
                    "port": int(host_port or service["port"]),
                    "internal": f"{service['name']}:{service['port']}",
                    "version": service.get("version", "1.0.0"),
                    "metadata": service.get("metadata") or {},
                    "depends_on": service.get("depends_on") or []}
        for endpoint_id in set(existing) - set(desired):
            conn.execute("DELETE FROM endpoints WHERE id = %s", (endpoint_id,))
        for endpoint_id, ep in desired.items():
            conn.execute(
                "INSERT INTO endpoints (id, service, version, address, port, internal, status,"
                " health, instance, deployment, source, metadata, depends_on)"
                " VALUES (%s, %s, %s, %s, %s, %s, 'UP', 'passing', %s, %s, 'deployment', %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET service = EXCLUDED.service,"
                " version = EXCLUDED.version, address = EXCLUDED.address, port = EXCLUDED.port,"
                " internal = EXCLUDED.internal, status = 'UP', health = 'passing',"
                " metadata = EXCLUDED.metadata, depends_on = EXCLUDED.depends_on,"
                " updated_at = now()",
                (endpoint_id, service["name"], ep["version"], ep["address"], ep["port"],
                 ep["internal"], endpoint_id, name, Jsonb(ep["metadata"]), ep["depends_on"]))


def register(endpoint_id: str, service: str, version: str, address: str, port: int,
             metadata: dict, depends_on: list, check: dict | None, source: str,
             status: str = "UP", probe_node: str | None = None) -> dict:
    """Create or replace an external (or legacy) endpoint."""
    return pool.fetchone(
        "INSERT INTO endpoints (id, service, version, address, port, status, health, source,"
        " metadata, depends_on, check_spec, last_heartbeat, probe_node)"
        " VALUES (%s, %s, %s, %s, %s, %s, 'passing', %s, %s, %s, %s, now(), %s)"
        " ON CONFLICT (id) DO UPDATE SET service = EXCLUDED.service, version = EXCLUDED.version,"
        " address = EXCLUDED.address, port = EXCLUDED.port, status = EXCLUDED.status,"
        " metadata = EXCLUDED.metadata, depends_on = EXCLUDED.depends_on,"
        " check_spec = EXCLUDED.check_spec, last_heartbeat = now(), down_since = NULL,"
        " probe_node = EXCLUDED.probe_node,"
        f" updated_at = now() WHERE endpoints.source <> 'deployment' RETURNING {COLUMNS}",
        (endpoint_id, service, version, address, port, status, source, Jsonb(metadata),
         depends_on, Jsonb(check) if check else None, probe_node))


def get(endpoint_id: str) -> dict | None:
    return pool.fetchone(f"SELECT {COLUMNS} FROM endpoints WHERE id = %s", (endpoint_id,))


def delete(endpoint_id: str) -> dict | None:
    return pool.fetchone(f"DELETE FROM endpoints WHERE id = %s AND source <> 'deployment'"
                         f" RETURNING {COLUMNS}", (endpoint_id,))


def heartbeat(endpoint_id: str) -> dict | None:
    return pool.fetchone(
        "UPDATE endpoints SET last_heartbeat = now(), down_since = NULL,"
        " status = CASE WHEN source = 'external' THEN 'UP' ELSE status END,"
        " health = CASE WHEN source = 'external' THEN 'passing' ELSE health END,"
        f" updated_at = now() WHERE id = %s AND source <> 'deployment' RETURNING {COLUMNS}",
        (endpoint_id,))


def set_status(endpoint_id: str, status: str) -> dict | None:
    return pool.fetchone(f"UPDATE endpoints SET status = %s, updated_at = now() WHERE id = %s"
                         f" RETURNING {COLUMNS}", (status, endpoint_id))


def set_health(endpoint_id: str, health: str, status: str) -> None:
    pool.execute("UPDATE endpoints SET health = %s, status = %s,"
                 " down_since = CASE WHEN %s = 'DOWN' THEN COALESCE(down_since, now()) END,"
                 " updated_at = now() WHERE id = %s", (health, status, status, endpoint_id))


def expire_ttl() -> tuple[list[str], list[str]]:
    """TTL endpoints that missed their heartbeat turn DOWN; past deregister_after they go."""
    down = pool.fetchall(
        "UPDATE endpoints SET status = 'DOWN', health = 'critical',"
        " down_since = COALESCE(down_since, now()), updated_at = now()"
        " WHERE source = 'external' AND check_spec->>'type' = 'ttl' AND status = 'UP'"
        " AND last_heartbeat < now() - make_interval(secs => (check_spec->>'ttl')::float8)"
        " RETURNING id")
    removed = pool.fetchall(
        "DELETE FROM endpoints WHERE source = 'external' AND status = 'DOWN'"
        " AND down_since IS NOT NULL AND down_since < now() - make_interval(secs =>"
        " COALESCE((check_spec->>'deregister_after')::float8, 60)) RETURNING id")
    return [r["id"] for r in down], [r["id"] for r in removed]


def probed_externals(node: str, leading: bool) -> list[dict]:
    """The external endpoints ``node`` probes: those naming it, and those naming no node
    when it runs the scheduler's leader (each is probed once per installation)."""
    return pool.fetchall(f"SELECT {COLUMNS} FROM endpoints WHERE source = 'external' AND"
                         " check_spec->>'type' IN ('http', 'tcp')"
                         " AND (probe_node = %s OR (probe_node IS NULL AND %s))",
                         (node, leading))


def find(name: str | None = None, version: str | None = None, healthy: bool | None = None,
         source: str | None = None) -> list[dict]:
    where, params = [], []
    for column, value in (("service", name), ("version", version), ("source", source)):
        if value:
            where.append(f"{column} = %s")
            params.append(value)
    if healthy is True:
        where.append("status = 'UP' AND health = 'passing'")
    elif healthy is False:
        where.append("NOT (status = 'UP' AND health = 'passing')")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return pool.fetchall(f"SELECT {COLUMNS} FROM endpoints {clause} ORDER BY service, id",
                         params)


def index(name: str) -> int:
    row = pool.fetchone("SELECT idx FROM services WHERE name = %s", (name,))
    return row["idx"] if row else 0


def services() -> list[dict]:
    return pool.fetchall("SELECT name, idx FROM services ORDER BY name")
