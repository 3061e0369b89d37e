"""Manage tokens straight in the database, for when no admin token is at hand.

    python -m ops.tokens create NAME --role admin [--expires 30d] [--rate-limit 100/minute]
    python -m ops.tokens revoke ID_OR_NAME
    python -m ops.tokens list
Uses DATABASE_URL (or the embedded Postgres of the data directory, as `make up` wrote it).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import config
from db import pool, tokens
from ops import bootstrap
from validation import parse_duration


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.tokens", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create")
    create.add_argument("name")
    create.add_argument("--role", choices=("viewer", "operator", "admin"), required=True)
    create.add_argument("--expires", help="30s, 12h, 30d... (default: never)")
    create.add_argument("--rate-limit", help="e.g. 100/minute (default: the server's)")
    revoke = sub.add_parser("revoke")
    revoke.add_argument("ref", help="token id or name")
    sub.add_parser("list")
    args = parser.parse_args(argv)

    cfg = config.from_env()
    if not cfg.database_url:
        runtime = bootstrap.read_runtime_env(cfg.data_dir)
        if "DATABASE_URL" not in runtime:
            print("no DATABASE_URL and no runtime.env: start the platform once or set it",
                  file=sys.stderr)
            return 2
        cfg = dataclasses.replace(cfg, database_url=runtime["DATABASE_URL"])
    pool.configure(cfg)

    if args.command == "create":
        expires = parse_duration(args.expires) if args.expires else None
        try:
            row, secret = tokens.create(args.name, args.role, "ops.tokens", expires,
                                        args.rate_limit)
        except tokens.NameTaken:
            print(f"an active token named {args.name!r} exists", file=sys.stderr)
            return 1
        print(f"id {row['id']}  name {row['name']}  role {row['role']}")
        print(secret)
        return 0
    if args.command == "revoke":
        row = tokens.revoke(args.ref)
        if row is None:
            print(f"no active token {args.ref!r}", file=sys.stderr)
            return 1
        print(f"revoked {row['id']} ({row['name']})")
        return 0
    for row in tokens.find():
        print(f"{row['id']}  {row['name']:20} {row['role']:8} expires "
              f"{row['expires_at'] or 'never'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
