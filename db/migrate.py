"""Apply db/migrations/*.sql in order, one transaction each, recorded in schema_migrations.

Run as ``python -m db.migrate`` (the Procfile's release step). With ``--first-token`` the
security issue's first admin token is created too (see db.tokens).
"""
from __future__ import annotations

import sys
from pathlib import Path

import config
from db import locks, pool, tokens

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def pending(conn) -> list[Path]:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                 " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
    done = {row["name"] for row in conn.execute("SELECT name FROM schema_migrations")}
    return [p for p in sorted(MIGRATIONS.glob("*.sql")) if p.name not in done]


def migrate() -> list[str]:
    applied = []
    conn = pool.direct_connect(autocommit=True)
    try:
        # one migrator at a time (two `release` steps racing would both apply 0001)
        with locks.migrations(conn):
            for path in pending(conn):
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)",
                                 (path.name,))
                applied.append(path.name)
    finally:
        conn.close()
    return applied


def main(argv: list[str]) -> int:
    cfg = config.from_env()
    pool.configure(cfg)
    applied = migrate()
    print(f"migrations applied: {', '.join(applied) if applied else 'none pending'}")
    if "--first-token" in argv:
        path = tokens.ensure_first_admin(cfg.data_dir)
        if path is not None:
            print(f"first admin token written to {path} (mode 0600)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
