"""Containers: what was asked for (spec) and what Docker was last seen doing (state)."""
from __future__ import annotations

from psycopg.types.json import Jsonb

from db import locks, pool


def _int_or_none(value):
    return int(value) if value not in (None, "") else None


COLUMNS = ("name, docker_id, kind, deployment, slot, generation, node, image, state, health,"
           " spec, ports, labels, pid, restarts, exit_code, error, created_at, started_at,"
           " finished_at, updated_at, draining, resources, incarnation, role")
ACTIVE = "state <> 'removed'"
# what a listing shows (web.views.container_json): all but the spec, the largest JSON, whose
# decoding was half of GET /api/containers' CPU
LISTED = COLUMNS.replace(" spec,", "")


def request(name: str, kind: str, node: str, image: str, spec: dict, labels: dict,
            conn, deployment: str | None = None, slot: int | None = None,
            generation: int | None = None, incarnation: int | None = None,
            role: str = "active") -> bool:
    """Record a container to create (a replica, or a warm pool member: ``role``). False
    when the name is taken by a live container.

    A removed container's row is replaced, so a name can be used again.
    """
    row = conn.execute(
        "INSERT INTO containers (name, kind, node, image, spec, labels, deployment, slot,"
        " generation, incarnation, role) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET docker_id = NULL, kind = EXCLUDED.kind,"
        " node = EXCLUDED.node, image = EXCLUDED.image, spec = EXCLUDED.spec,"
        " labels = EXCLUDED.labels, deployment = EXCLUDED.deployment, slot = EXCLUDED.slot,"
        " generation = EXCLUDED.generation, incarnation = EXCLUDED.incarnation,"
        " role = EXCLUDED.role, state = 'creating', health = 'none', ports = '{}', pid = NULL,"
        " restarts = 0, exit_code = NULL, error = NULL, draining = false, resources = '{}',"
        " image_id = NULL,"
        " created_at = now(), started_at = NULL, finished_at = NULL, updated_at = now()"
        " WHERE containers.state = 'removed' RETURNING name",
        (name, kind, node, image, Jsonb(spec), Jsonb(labels), deployment, slot,
         generation, incarnation, role)).fetchone()
    return row is not None


def count_by_state() -> dict[str, int]:
    """Live containers (every one but removed ones) by state; instances count only as
    replicas (their active role)."""
    return {r["state"]: r["n"] for r in pool.fetchall(
        "SELECT state, count(*) AS n FROM containers WHERE state <> 'removed'"
        " AND role = 'active' GROUP BY state")}


def reservation(deployment: str, slot: int, generation: int) -> dict | None:
    """An instance reserved (named) but not seen in Docker yet: a create that a worker began
    and may not have finished. Creating the slot again reuses its name."""
    return pool.fetchone(f"SELECT {COLUMNS} FROM containers WHERE deployment = %s AND slot = %s"
                         " AND generation = %s AND state = 'creating' AND docker_id IS NULL"
                         " ORDER BY incarnation DESC LIMIT 1", (deployment, slot, generation))


def set_role(name: str, role: str) -> None:
    pool.execute("UPDATE containers SET role = %s, updated_at = now() WHERE name = %s",
                 (role, name))


def kept_of(deployment: str, slot: int) -> dict | None:
    """The slot's kept container (its last dead one), if Docker still has it."""
    return pool.fetchone(f"SELECT {COLUMNS} FROM containers WHERE deployment = %s"
                         " AND slot = %s AND role = 'kept' AND state <> 'removed'"
                         " ORDER BY incarnation DESC LIMIT 1", (deployment, slot))


def kept_everywhere() -> list[dict]:
    """Every kept container Docker still has, on any node (cleanup keeps each slot's
    newest)."""
    return pool.fetchall(f"SELECT {COLUMNS} FROM containers WHERE role = 'kept'"
                         " AND state <> 'removed'")


def get(ref: str) -> dict | None:
    """By name, full Docker id, or an id prefix of at least 12 characters."""
    rows = pool.fetchall(
        f"SELECT {COLUMNS} FROM containers WHERE name = %s OR docker_id = %s"
        " OR (length(%s) >= 12 AND docker_id LIKE %s || '%%')"
        " ORDER BY (state = 'removed'), updated_at DESC LIMIT 1",
        (ref, ref, ref, ref))
    return rows[0] if rows else None


def by_name(name: str) -> dict | None:
    return pool.fetchone(f"SELECT {COLUMNS} FROM containers WHERE name = %s", (name,))


def find(state: str | None = None, image: str | None = None, deployment: str | None = None,
         kind: str | None = None, label: tuple[str, str | None] | None = None,
         node: str | None = None, include_removed: bool = False, after: str | None = None,
         limit: int = 100, role: str | None = None, columns: str = COLUMNS) -> list[dict]:
    where, params = [], []
    if not include_removed and state != "removed":
        where.append(ACTIVE)
    for column, value in (("state", state), ("image", image), ("deployment", deployment),
                          ("kind", kind), ("node", node), ("role", role)):
        if value:
            where.append(f"{column} = %s")
            params.append(value)
    if label is not None:
        key, value = label
        if value is None:
            where.append("labels ? %s")
            params.append(key)
        else:
            where.append("labels ->> %s = %s")
            params += [key, value]
    if after:
        where.append("name > %s")
        params.append(after)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    params.append(limit)
    return pool.fetchall(f"SELECT {columns} FROM containers {clause} ORDER BY name LIMIT %s",
                         params)


def set_state(name: str, state: str, **fields) -> dict | None:
    """Update one container's observed state and any of its observed fields."""
    allowed = {"docker_id", "ports", "pid", "exit_code", "error", "started_at", "finished_at",
               "health", "restarts"}
    sets, params = ["state = %s", "updated_at = now()"], [state]
    for key, value in fields.items():
        if key not in allowed:
            raise ValueError(f"unknown container field {key}")
        sets.append(f"{key} = %s")
        params.append(Jsonb(value) if key == "ports" else value)
    params.append(name)
    return pool.fetchone(f"UPDATE containers SET {', '.join(sets)} WHERE name = %s"
                         f" RETURNING {COLUMNS}", params)


def observe(f: dict) -> tuple[dict | None, str | None]:
    """Upsert what Docker reports for one of our containers (``workers.observe.fields``).

    Returns (row, previous_state). A container we never asked for (created by a dead
    worker before it recorded it, or by another process of ours) is recorded too.
    """
    name, docker_id, labels = f["name"], f["docker_id"], f["labels"]
    with pool.connection() as conn:
        # Two passes may record one new container at once: FOR UPDATE cannot lock a row that
        # does not exist yet, and ON CONFLICT (name) does not cover the docker_id key, so the
        # second insert would fail on it. One lock per name serialises them.
        locks.in_transaction(conn, "container", name)
        before = conn.execute("SELECT state, docker_id FROM containers WHERE name = %s FOR UPDATE",
                              (name,)).fetchone()
        row = conn.execute(
            "INSERT INTO containers (name, docker_id, kind, node, image, state, ports, labels, pid,"
            " exit_code, restarts, started_at, finished_at, deployment, slot, generation,"
            " resources, incarnation, image_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (name) DO UPDATE SET docker_id = EXCLUDED.docker_id,"
            " resources = EXCLUDED.resources,"
            " image_id = COALESCE(EXCLUDED.image_id, containers.image_id),"
            # our own removal in progress stays "removing" until the container is gone
            " state = CASE WHEN containers.state = 'removing' AND EXCLUDED.state <> 'running'"
            "  AND containers.docker_id = EXCLUDED.docker_id THEN 'removing'"
            "  ELSE EXCLUDED.state END, ports = EXCLUDED.ports, pid = EXCLUDED.pid,"
            " exit_code = EXCLUDED.exit_code, restarts = EXCLUDED.restarts,"
            " started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,"
            " deployment = EXCLUDED.deployment, slot = EXCLUDED.slot,"
            " generation = EXCLUDED.generation, kind = EXCLUDED.kind, updated_at = now(),"
            " incarnation = EXCLUDED.incarnation,"
            # a new container under the same name starts with no verdicts of its own
            " health = CASE WHEN containers.docker_id IS DISTINCT FROM EXCLUDED.docker_id"
            "  THEN 'none' ELSE containers.health END,"
            " health_detail = CASE WHEN containers.docker_id IS DISTINCT FROM EXCLUDED.docker_id"
            "  THEN NULL ELSE containers.health_detail END,"
            " draining = containers.draining AND containers.docker_id = EXCLUDED.docker_id"
            f" RETURNING {COLUMNS}",
            (name, docker_id, f["kind"], f["node"], f["image"], f["state"], Jsonb(f["ports"]),
             Jsonb(labels), f["pid"], f["exit_code"], f["restarts"], f["started_at"],
             f["finished_at"], labels.get("harbormaster.deployment"),
             _int_or_none(labels.get("harbormaster.slot")),
             _int_or_none(labels.get("harbormaster.generation")),
             Jsonb(f.get("resources") or {}),
             _int_or_none(labels.get("harbormaster.incarnation")), f.get("image_id"))).fetchone()
    previous = None
    if before is not None and before["docker_id"] == docker_id:
        previous = before["state"]
    return row, previous


def mark_gone(name: str, docker_id: str | None = None) -> dict | None:
    """Docker no longer has the container: it is removed.

    Returns the row with ``previous`` (the state before), or None when it was already
    removed (or belongs to another docker id).
    """
    return pool.fetchone(
        "UPDATE containers c SET state = 'removed', pid = NULL, updated_at = now()"
        " FROM (SELECT name, state AS previous FROM containers WHERE name = %s FOR UPDATE) p"
        " WHERE c.name = p.name AND c.state <> 'removed'"
        " AND (%s::text IS NULL OR c.docker_id = %s)"
        f" RETURNING p.previous, {', '.join('c.' + col.strip() for col in COLUMNS.split(','))}",
        (name, docker_id, docker_id))


def abandon_request(name: str) -> dict | None:
    """A create request whose job was cancelled before it ran: the container never will
    exist, so its row is removed instead of staying "creating" forever."""
    return pool.fetchone("UPDATE containers SET state = 'removed', updated_at = now()"
                         " WHERE name = %s AND state = 'creating' AND docker_id IS NULL"
                         " RETURNING name", (name,))


def live_on_node(node: str) -> list[dict]:
    """Rows Docker should have (everything but removed and still-creating ones)."""
    return pool.fetchall(f"SELECT {COLUMNS} FROM containers WHERE node = %s"
                         " AND state NOT IN ('removed', 'creating')", (node,))


def set_draining(name: str, draining: bool) -> None:
    pool.execute("UPDATE containers SET draining = %s, updated_at = now() WHERE name = %s",
                 (draining, name))


def set_disk(name: str, size: int) -> None:
    pool.execute("UPDATE containers SET disk_bytes = %s WHERE name = %s", (size, name))


def set_health(name: str, health: str, detail: dict) -> dict | None:
    """Record a probe verdict; returns the row with ``previous`` health."""
    return pool.fetchone(
        "UPDATE containers c SET health = %s, health_detail = %s, updated_at = now()"
        " FROM (SELECT name, health AS previous FROM containers WHERE name = %s FOR UPDATE) p"
        " WHERE c.name = p.name RETURNING p.previous, c.deployment, c.name",
        (health, Jsonb(detail), name))


def prune_removed(seconds: float) -> int:
    """Rows of containers removed longer ago than ``seconds``."""
    return pool.execute("DELETE FROM containers WHERE state = 'removed' AND"
                        " updated_at < now() - make_interval(secs => %s)", (seconds,))
