"""Deployments: desired state (template, replicas, bounds, strategy), revisions, and the
per-slot restart backoff the reconciler keeps."""
from __future__ import annotations

from psycopg.types.json import Jsonb

from db import pool

COLUMNS = ("name, generation, stable_generation, template, resources, replicas,"
           " min_replicas, max_replicas, desired_version, retired_slots, restart,"
           " update_strategy, paused, rolling_back, rollout_started_at, state, state_reason,"
           " counts, deleting, created_by, created_at, updated_at, warm_pool,"
           " extract(epoch FROM rollout_started_at) AS rollout_started_epoch")


def create(name: str, template: dict, resources: dict, replicas: int,
           min_replicas: int, max_replicas: int, restart: dict, update_strategy: dict,
           who: str | None, conn, warm_pool: int = 0) -> dict | None:
    row = conn.execute(
        "INSERT INTO deployments (name, template, resources, replicas, min_replicas,"
        " max_replicas, restart, update_strategy, created_by, dirty, warm_pool)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, true, %s)"
        f" ON CONFLICT DO NOTHING RETURNING {COLUMNS}",
        (name, Jsonb(template), Jsonb(resources), replicas, min_replicas, max_replicas,
         Jsonb(restart), Jsonb(update_strategy), who, warm_pool)).fetchone()
    if row is not None:
        conn.execute("INSERT INTO deployment_revisions (deployment, generation, template, cause,"
                     " who) VALUES (%s, 1, %s, 'create', %s)", (name, Jsonb(template), who))
    return row


def get(name: str, conn=None) -> dict | None:
    sql, params = f"SELECT {COLUMNS} FROM deployments WHERE name = %s", (name,)
    if conn is not None:
        return conn.execute(sql, params).fetchone()
    return pool.fetchone(sql, params)


def find(after: str | None = None, limit: int = 100) -> list[dict]:
    if after:
        return pool.fetchall(f"SELECT {COLUMNS} FROM deployments WHERE name > %s ORDER BY name"
                             " LIMIT %s", (after, limit))
    return pool.fetchall(f"SELECT {COLUMNS} FROM deployments ORDER BY name LIMIT %s", (limit,))


def names() -> list[str]:
    return [r["name"] for r in pool.fetchall("SELECT name FROM deployments")]


def set_replicas(name: str, replicas: int, conn) -> dict | None:
    """A new replica count (never a rollout). Scaling up reuses retired slots first."""
    return conn.execute(
        "UPDATE deployments SET replicas = %s, desired_version = desired_version + 1,"
        " retired_slots = CASE WHEN %s > replicas THEN '{}' ELSE retired_slots END,"
        " dirty = true, updated_at = now() WHERE name = %s AND NOT deleting"
        f" RETURNING {COLUMNS}", (replicas, replicas, name)).fetchone()


def update(name: str, conn, **fields) -> dict | None:
    """Change fields other than the template (bounds, resources, restart, strategy, the warm
    pool's size)."""
    allowed = {"min_replicas", "max_replicas", "resources", "restart", "update_strategy",
               "paused", "warm_pool"}
    sets, params = ["dirty = true", "updated_at = now()"], []
    for key, value in fields.items():
        assert key in allowed, key
        sets.append(f"{key} = %s")
        params.append(Jsonb(value) if isinstance(value, dict) else value)
    params.append(name)
    return conn.execute(f"UPDATE deployments SET {', '.join(sets)} WHERE name = %s"
                        f" AND NOT deleting RETURNING {COLUMNS}", params).fetchone()


def new_generation(name: str, template: dict, cause: str, who: str | None, conn,
                   rolling_back: bool = False) -> dict | None:
    """A template change (or restart, or rollback): the next generation rolls out."""
    row = conn.execute(
        "UPDATE deployments SET generation = generation + 1, template = %s,"
        " rollout_started_at = now(), rolling_back = %s, paused = false, dirty = true,"
        f" updated_at = now() WHERE name = %s AND NOT deleting RETURNING {COLUMNS}",
        (Jsonb(template), rolling_back, name)).fetchone()
    if row is not None:
        conn.execute("INSERT INTO deployment_revisions (deployment, generation, template, cause,"
                     " who) VALUES (%s, %s, %s, %s, %s)",
                     (name, row["generation"], Jsonb(template), cause, who))
    return row


def revision(name: str, generation: int) -> dict | None:
    return pool.fetchone("SELECT * FROM deployment_revisions WHERE deployment = %s AND"
                         " generation = %s", (name, generation))


def revisions(name: str) -> list[dict]:
    return pool.fetchall("SELECT generation, template, cause, who, created_at FROM"
                         " deployment_revisions WHERE deployment = %s ORDER BY generation DESC",
                         (name,))


def retire_slot(name: str, slot: int, conn) -> dict | None:
    return conn.execute(
        "UPDATE deployments SET replicas = greatest(replicas - 1, 0),"
        " retired_slots = array_append(retired_slots, %s), desired_version = desired_version + 1,"
        " dirty = true, updated_at = now() WHERE name = %s AND NOT (%s = ANY(retired_slots))"
        f" RETURNING {COLUMNS}", (slot, name, slot)).fetchone()


def mark_deleting(name: str, conn) -> dict | None:
    return conn.execute("UPDATE deployments SET deleting = true, dirty = true, updated_at = now()"
                        f" WHERE name = %s RETURNING {COLUMNS}", (name,)).fetchone()


def delete_row(name: str) -> None:
    """The deployment is gone: so is every record that belongs to it, so the name can be
    used again. History (events, scaling decisions) stays."""
    with pool.connection() as conn:
        if conn.execute("DELETE FROM deployments WHERE name = %s AND deleting RETURNING name",
                        (name,)).fetchone() is None:
            return
        for table in ("deployment_revisions", "slots", "scaling_policies",
                      "custom_metrics"):
            conn.execute(f"DELETE FROM {table} WHERE deployment = %s", (name,))
        conn.execute("DELETE FROM secrets WHERE owner = %s", (secret_owner(name),))


def secret_owner(name: str) -> str:
    return f"deployment:{name}"


def set_status(name: str, state: str, reason: str, counts: dict) -> None:
    pool.execute("UPDATE deployments SET state = %s, state_reason = %s, counts = %s"
                 " WHERE name = %s", (state, reason, Jsonb(counts), name))


def mark_stable(name: str, generation: int) -> None:
    pool.execute("UPDATE deployments SET stable_generation = %s, rolling_back = false,"
                 " rollout_started_at = NULL WHERE name = %s AND generation = %s",
                 (generation, name, generation))


def set_image_digest(name: str, generation: int, pinned: str) -> None:
    """What every instance of this generation is created from: ``repository@digest`` (or the
    reference itself when the image has no registry digest)."""
    pool.execute("UPDATE deployment_revisions SET image_digest = %s WHERE deployment = %s"
                 " AND generation = %s", (pinned, name, generation))


def pause(name: str, reason: str) -> None:
    pool.execute("UPDATE deployments SET paused = true, state = 'paused', state_reason = %s"
                 " WHERE name = %s", (reason, name))


def mark_dirty(name: str) -> None:
    pool.execute("UPDATE deployments SET dirty = true WHERE name = %s", (name,))


def take_dirty(name: str) -> bool:
    """Clear the dirty flag; True when it was set (someone asked for another look)."""
    return pool.fetchone("UPDATE deployments SET dirty = false WHERE name = %s AND dirty"
                         " RETURNING name", (name,)) is not None


def probe_targets(node: str) -> list[dict]:
    """The running replicas on ``node`` of deployments with a health check, with the
    check: what that node's agent probes. Warm pool members are probed while they run (to
    be ready once before their pause), never while paused."""
    return pool.fetchall(
        "SELECT c.name, c.docker_id, c.ports, c.started_at, c.health, c.deployment, c.role,"
        " d.template->'health_check' AS health_check FROM containers c"
        " JOIN deployments d ON d.name = c.deployment"
        " WHERE c.node = %s AND c.state = 'running' AND c.role IN ('active', 'warm')"
        " AND NOT c.draining"
        " AND c.docker_id IS NOT NULL AND d.template ? 'health_check'"
        " AND d.template->'health_check' <> 'null' AND NOT d.deleting", (node,))


def with_slots_or_instances_on(node: str) -> list[str]:
    return [r["deployment"] for r in pool.fetchall(
        "SELECT deployment FROM slots WHERE node = %s UNION SELECT deployment FROM containers"
        " WHERE node = %s AND deployment IS NOT NULL AND state <> 'removed'", (node, node))]


def set_global_replicas(name: str, replicas: int) -> None:
    """A global deployment runs one instance per eligible node: its count follows them."""
    pool.execute("UPDATE deployments SET replicas = %s, updated_at = now() WHERE name = %s",
                 (replicas, name))
