"""Scaling policies, custom metrics and the decisions the autoscaler took."""
from __future__ import annotations

from psycopg.types.json import Jsonb

from db import pool

COLUMNS = ("id, deployment, metrics, rules, scale_up_cooldown, scale_down_cooldown,"
           " stabilization_window, enabled, last_scale_up_at, last_scale_down_at, created_by,"
           " created_at, updated_at")


def create(deployment: str, metrics: list, rules: list | None, up: float, down: float,
           window: float, enabled: bool, who: str | None, conn) -> dict | None:
    return conn.execute(
        "INSERT INTO scaling_policies (deployment, metrics, rules, scale_up_cooldown,"
        " scale_down_cooldown, stabilization_window, enabled, created_by)"
        f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING {COLUMNS}",
        (deployment, Jsonb(metrics), Jsonb(rules) if rules is not None else None, up, down,
         window, enabled, who)).fetchone()


def replace(policy_id: str, metrics: list, rules: list | None, up: float, down: float,
            window: float, enabled: bool, conn) -> dict | None:
    return conn.execute(
        "UPDATE scaling_policies SET metrics = %s, rules = %s, scale_up_cooldown = %s,"
        " scale_down_cooldown = %s, stabilization_window = %s, enabled = %s, updated_at = now()"
        f" WHERE id = %s RETURNING {COLUMNS}",
        (Jsonb(metrics), Jsonb(rules) if rules is not None else None, up, down, window,
         enabled, policy_id)).fetchone()


def get(policy_id: str) -> dict | None:
    return pool.fetchone(f"SELECT {COLUMNS} FROM scaling_policies WHERE id = %s", (policy_id,))


def find(enabled_only: bool = False) -> list[dict]:
    clause = "WHERE enabled" if enabled_only else ""
    return pool.fetchall(f"SELECT {COLUMNS} FROM scaling_policies {clause} ORDER BY deployment")


def policy_for(deployment: str) -> dict | None:
    return pool.fetchone(f"SELECT {COLUMNS} FROM scaling_policies WHERE deployment = %s",
                         (deployment,))


def delete(policy_id: str) -> dict | None:
    return pool.fetchone(f"DELETE FROM scaling_policies WHERE id = %s RETURNING {COLUMNS}",
                         (policy_id,))


def mark_scaled(deployment: str, up: bool) -> None:
    column = "last_scale_up_at" if up else "last_scale_down_at"
    pool.execute(f"UPDATE scaling_policies SET {column} = now() WHERE deployment = %s",
                 (deployment,))


def report_metric(deployment: str, name: str, value: float, who: str | None) -> dict:
    return pool.fetchone(
        "INSERT INTO custom_metrics (deployment, name, value, who) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (deployment, name) DO UPDATE SET value = EXCLUDED.value, at = now(),"
        " who = EXCLUDED.who RETURNING deployment, name, value, at",
        (deployment, name, value, who))


def custom_metrics(deployment: str) -> dict[str, tuple[float, float]]:
    rows = pool.fetchall("SELECT name, value, extract(epoch FROM now() - at) AS age"
                         " FROM custom_metrics WHERE deployment = %s", (deployment,))
    return {r["name"]: (r["value"], float(r["age"])) for r in rows}


def utilisation(deployment: str, fresh_seconds: float) -> dict:
    """Average cpu and memory % over the deployment's ready instances' latest snapshots."""
    return pool.fetchone(
        "SELECT avg(cpu_percent) AS cpu, avg(memory_percent) AS memory, count(*) AS n FROM ("
        " SELECT DISTINCT ON (s.container) s.cpu_percent, s.memory_percent"
        " FROM health_snapshots s JOIN containers c ON c.name = s.container"
        " WHERE s.deployment = %s AND c.state = 'running' AND NOT c.draining"
        " AND c.health <> 'unhealthy' AND s.running"
        " AND s.at > now() - make_interval(secs => %s)"
        " ORDER BY s.container, s.at DESC) latest", (deployment, fresh_seconds))


def recent_recommendations(deployment: str, seconds: float) -> list[tuple[float, int]]:
    rows = pool.fetchall("SELECT extract(epoch FROM at) AS at, recommendation FROM"
                         " scaling_decisions WHERE deployment = %s AND"
                         " at > now() - make_interval(secs => %s)", (deployment, seconds))
    return [(float(r["at"]), r["recommendation"]) for r in rows]


def record_decision(deployment: str, current: int, desired: int, recommendation: int,
                    applied: bool, reason: str, inputs: dict) -> None:
    pool.execute("INSERT INTO scaling_decisions (deployment, current, desired, recommendation,"
                 " applied, reason, inputs) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                 (deployment, current, desired, recommendation, applied, reason, Jsonb(inputs)))


def decisions(deployment: str | None, since, limit: int) -> list[dict]:
    clause, params = pool.where([("deployment = %s", deployment), ("at >= %s", since)])
    return pool.fetchall(f"SELECT * FROM scaling_decisions {clause} ORDER BY at DESC, id DESC"
                         " LIMIT %s", params + [limit])
