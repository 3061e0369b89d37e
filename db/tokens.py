"""Bearer tokens: name, role, optional expiry and rate limit; the secret is kept only as a
SHA-256 hash (tokens are 256-bit random, so a slow hash adds nothing).
"""
from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from db import pool

ROLES = ("viewer", "operator", "admin")
REVOKED = "token_revoked"  # NOTIFYed with the token's id when it is revoked
COLUMNS = ("id, name, role, prefix, rate_limit, expires_at, created_at, created_by, revoked_at,"
           " last_used_at")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return "hm_" + secrets.token_urlsafe(32)


class NameTaken(Exception):
    pass


def create(name: str, role: str, created_by: str | None, expires_in: float | None = None,
           rate_limit: str | None = None, conn=None) -> tuple[dict, str]:
    """Returns (token row, secret). The secret is never stored nor shown again."""
    assert role in ROLES
    secret = new_secret()
    sql = ("INSERT INTO tokens (name, role, secret_hash, prefix, rate_limit, expires_at,"
           " created_by) VALUES (%s, %s, %s, %s, %s,"
           " CASE WHEN %s::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => %s) END,"
           f" %s) ON CONFLICT DO NOTHING RETURNING {COLUMNS}")
    params = (name, role, hash_secret(secret), secret[:7], rate_limit, expires_in, expires_in,
              created_by)
    if conn is not None:
        row = conn.execute(sql, params).fetchone()
    else:
        row = pool.fetchone(sql, params)
    if row is None:
        raise NameTaken(name)
    return row, secret


def authenticate(secret: str) -> dict | None:
    """The active token with this secret, or None (unknown, revoked or expired); its
    last_used_at is written at most once a minute, in the same round trip."""
    return pool.fetchone(
        "WITH found AS (SELECT id FROM tokens WHERE secret_hash = %s AND revoked_at IS NULL"
        "  AND (expires_at IS NULL OR expires_at > now())),"
        " used AS (UPDATE tokens SET last_used_at = now() WHERE id IN (SELECT id FROM found)"
        "  AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute'))"
        f" SELECT {COLUMNS} FROM tokens WHERE id IN (SELECT id FROM found)",
        (hash_secret(secret),))


def find(include_revoked: bool = False) -> list[dict]:
    clause = "" if include_revoked else "WHERE revoked_at IS NULL"
    return pool.fetchall(f"SELECT {COLUMNS} FROM tokens {clause} ORDER BY created_at")


def get(token_id: str) -> dict | None:
    return pool.fetchone(f"SELECT {COLUMNS} FROM tokens WHERE id = %s", (token_id,))


def revoke(ref: str) -> dict | None:
    """Revoke by id or by (active) name; returns the token, or None if none matched. Every
    web process hears of it at the commit (``REVOKED``) and forgets the token at once."""
    with pool.connection() as conn:
        row = conn.execute(
            "UPDATE tokens SET revoked_at = now() WHERE revoked_at IS NULL AND"
            " (id::text = %s OR name = %s)"
            f" RETURNING {COLUMNS}", (ref, ref)).fetchone()
        if row is not None:
            conn.execute("SELECT pg_notify(%s, %s)", (REVOKED, str(row["id"])))
    return row


def ensure_first_admin(data_dir: Path) -> Path | None:
    """Create an admin token when no active one exists; write it (0600) under data_dir."""
    active = pool.fetchone("SELECT count(*) AS n FROM tokens WHERE role = 'admin' AND"
                           " revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())")
    if active["n"]:
        return None
    name = "admin"
    taken = {r["name"] for r in find()}
    suffix = 1
    while name in taken:
        suffix += 1
        name = f"admin-{suffix}"
    _, secret = create(name, "admin", created_by="release")
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "admin-token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)
    return path
