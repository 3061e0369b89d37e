"""Images: what this installation pulled on each node (image GC's record), failed pulls and
their backoff, and registry credentials (stored apart, never returned)."""
from __future__ import annotations

from psycopg.types.json import Jsonb

from db import locks, pool

# --- pulled images ------------------------------------------------------------------------


def record_pull(node: str, reference: str, image_id: str | None, digest: str | None,
                size_bytes: int | None) -> None:
    """A pull of ``reference`` succeeded on ``node``: it is ours to collect later."""
    pool.execute(
        "INSERT INTO node_images (node, reference, image_id, digest, size_bytes)"
        " VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (node, reference) DO UPDATE SET image_id = EXCLUDED.image_id,"
        " digest = EXCLUDED.digest, size_bytes = EXCLUDED.size_bytes, pulled_at = now(),"
        " last_used_at = now()",
        (node, reference, image_id, digest, size_bytes))


def touch(node: str, image_ids: list[str]) -> int:
    """The images with these ids are used now on ``node`` (a container of them was created or
    runs): their last use moves to now."""
    if not image_ids:
        return 0
    return pool.execute("UPDATE node_images SET last_used_at = now()"
                        " WHERE node = %s AND image_id = ANY(%s)", (node, image_ids))


def pulled_on(node: str) -> list[dict]:
    """The images this installation pulled on ``node``, with the seconds since each was last
    used (least recently used first)."""
    return pool.fetchall(
        "SELECT *, extract(epoch FROM now() - last_used_at) AS idle_seconds,"
        " extract(epoch FROM now() - pulled_at) AS age_seconds"
        " FROM node_images WHERE node = %s ORDER BY last_used_at, reference", (node,))


def all_pulled() -> list[dict]:
    return pool.fetchall("SELECT * FROM node_images ORDER BY node, reference")


def forget(node: str, reference: str) -> None:
    pool.execute("DELETE FROM node_images WHERE node = %s AND reference = %s",
                 (node, reference))


def forget_image(node: str, image_id: str) -> None:
    """Every reference of an image removed from ``node``."""
    pool.execute("DELETE FROM node_images WHERE node = %s AND image_id = %s", (node, image_id))


# --- failed pulls -------------------------------------------------------------------------


def pull_failure(node: str, reference: str) -> dict | None:
    """The last failure of pulling ``reference`` on ``node`` and whether its backoff still
    runs (``waiting``), or None."""
    return pool.fetchone(
        "SELECT *, retry_after > now() AS waiting,"
        " extract(epoch FROM retry_after - now()) AS retry_in"
        " FROM pull_failures WHERE node = %s AND reference = %s", (node, reference))


def record_pull_failure(node: str, reference: str, reason: str, backoff_seconds) -> int:
    """One more failed pull; ``backoff_seconds(failures)`` says how long the next waits.
    Returns the count of failures in a row."""
    row = pool.fetchone("SELECT failures FROM pull_failures WHERE node = %s AND reference = %s",
                        (node, reference))
    failures = (row["failures"] if row else 0) + 1
    pool.execute(
        "INSERT INTO pull_failures (node, reference, failures, reason, retry_after)"
        " VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))"
        " ON CONFLICT (node, reference) DO UPDATE SET failures = EXCLUDED.failures,"
        " reason = EXCLUDED.reason, retry_after = EXCLUDED.retry_after",
        (node, reference, failures, reason, float(backoff_seconds(failures))))
    return failures


def clear_pull_failure(node: str, reference: str) -> None:
    pool.execute("DELETE FROM pull_failures WHERE node = %s AND reference = %s",
                 (node, reference))


# --- registry credentials -----------------------------------------------------------------


def put_credentials(registry: str, username: str, password: str, who: str | None) -> None:
    pool.execute(
        "INSERT INTO registry_credentials (registry, username, password, created_by)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (registry) DO UPDATE SET"
        " username = EXCLUDED.username, password = EXCLUDED.password,"
        " created_by = EXCLUDED.created_by, created_at = now()",
        (registry, username, password, who))


def credentials_for(registry: str) -> dict | None:
    """``{"username", "password"}`` for a registry (host[:port]), or None: for the executor
    that pulls or pushes only."""
    return pool.fetchone("SELECT username, password FROM registry_credentials"
                         " WHERE registry = %s", (registry,))


def registries() -> list[dict]:
    """The registries with credentials, without their passwords."""
    return pool.fetchall("SELECT registry, username, created_by, created_at"
                         " FROM registry_credentials ORDER BY registry")


def delete_credentials(registry: str) -> bool:
    return pool.execute("DELETE FROM registry_credentials WHERE registry = %s",
                        (registry,)) > 0


# --- runtime settings ---------------------------------------------------------------------


def cache_size_override() -> int | None:
    """The cache limit set through the API (bytes), or None: the configuration's applies."""
    row = pool.fetchone("SELECT image_cache_size FROM installation")
    return row["image_cache_size"] if row else None


def set_cache_size(size_bytes: int | None) -> None:
    pool.execute("UPDATE installation SET image_cache_size = %s", (size_bytes,))


# --- what each engine holds ---------------------------------------------------------------


def replace_engine_images(node: str, listed: list[dict]) -> None:
    """The engine of ``node`` holds exactly ``listed`` (dicts with image_id, tags, digests,
    size_bytes, created_at, labels)."""
    with pool.connection() as conn:
        # the agent and the executor both record a node's list: one at a time
        locks.in_transaction(conn, "engine_images", node)
        conn.execute("DELETE FROM engine_images WHERE node = %s AND NOT image_id = ANY(%s)",
                     (node, [image["image_id"] for image in listed]))
        for image in listed:
            conn.execute(
                "INSERT INTO engine_images (node, image_id, tags, digests, size_bytes,"
                " created_at, labels) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (node, image_id) DO UPDATE SET tags = EXCLUDED.tags,"
                " digests = EXCLUDED.digests, size_bytes = EXCLUDED.size_bytes,"
                " created_at = EXCLUDED.created_at, labels = EXCLUDED.labels,"
                " listed_at = now()",
                (node, image["image_id"], image["tags"], image["digests"],
                 image["size_bytes"], image["created_at"], Jsonb(image["labels"])))


def engine_images(node: str | None = None) -> list[dict]:
    """Every image of every engine (or of one node), with its last use as recorded by this
    installation and the containers (not removed) made from it."""
    return pool.fetchall(
        "SELECT e.*, p.last_used_at, p.pulled_at, COALESCE(u.users, '[]'::jsonb) AS users"
        " FROM engine_images e"
        " LEFT JOIN LATERAL (SELECT max(last_used_at) AS last_used_at,"
        "  max(pulled_at) AS pulled_at FROM node_images n"
        "  WHERE n.node = e.node AND n.image_id = e.image_id) p ON true"
        " LEFT JOIN LATERAL (SELECT jsonb_agg(jsonb_build_object('name', c.name,"
        "  'deployment', c.deployment, 'state', c.state, 'role', c.role, 'image', c.image)"
        "  ORDER BY c.name)"
        "  AS users FROM containers c WHERE c.node = e.node AND c.state <> 'removed'"
        # by id once recorded; else by the reference as written (Docker lists :latest)
        "  AND (c.image_id = e.image_id OR c.image = ANY(e.tags) OR c.image = ANY(e.digests)"
        "  OR c.image || ':latest' = ANY(e.tags))) u ON true"
        " WHERE %s::text IS NULL OR e.node = %s ORDER BY e.node, e.tags[1], e.image_id",
        (node, node))
