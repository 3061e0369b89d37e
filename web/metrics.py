"""Prometheus: GET /metrics in text format.

Counters and gauges of the platform come from Postgres at scrape time (so they are the
same whichever process did the work); HTTP latency histograms come from every gunicorn
worker through prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR).
"""
from __future__ import annotations

import os
import time

from flask import Response, g, request
from prometheus_client import CollectorRegistry, Histogram, generate_latest, multiprocess
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    SummaryMetricFamily)

from db import pool

HTTP_LATENCY = Histogram("harbormaster_http_request_duration_seconds",
                         "HTTP request latency by method, route and status",
                         ["method", "route", "status"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))


class PlatformCollector:
    """The platform's figures, read from Postgres at each scrape."""

    def collect(self):
        jobs = GaugeMetricFamily("harbormaster_jobs", "Jobs recorded, by kind and status",
                                 labels=["kind", "status"])
        durations = SummaryMetricFamily("harbormaster_job_duration_seconds",
                                        "Duration of ended jobs, by kind", labels=["kind"])
        for row in pool.fetchall(
                "SELECT kind, status, count(*) AS n, coalesce(sum(extract(epoch FROM"
                " finished_at - created_at)), 0) AS seconds, count(finished_at) AS ended"
                " FROM jobs GROUP BY kind, status ORDER BY kind, status"):
            jobs.add_metric([row["kind"], row["status"]], row["n"])
        for row in pool.fetchall(
                "SELECT kind, count(*) AS n, sum(extract(epoch FROM finished_at - created_at))"
                " AS seconds FROM jobs WHERE finished_at IS NOT NULL GROUP BY kind"):
            durations.add_metric([row["kind"]], row["n"], float(row["seconds"] or 0))
        yield jobs
        yield durations

        actions = CounterMetricFamily("harbormaster_reconcile_actions",
                                      "Actions the reconciler took, by deployment and action",
                                      labels=["deployment", "action"])
        for row in pool.fetchall(
                "SELECT deployment, kind, count(*) AS n FROM events WHERE kind IN"
                " ('instance_created', 'instance_removed', 'instance_stopped', 'backoff',"
                "  'rollback') AND deployment IS NOT NULL GROUP BY deployment, kind"):
            actions.add_metric([row["deployment"], row["kind"].replace("instance_", "")],
                               row["n"])
        yield actions

        cpu = GaugeMetricFamily("harbormaster_instance_cpu_percent",
                                "CPU use of an instance, % of its limit or of the host",
                                labels=["container", "deployment"])
        mem = GaugeMetricFamily("harbormaster_instance_memory_bytes",
                                "Memory use of an instance", labels=["container", "deployment"])
        up = GaugeMetricFamily("harbormaster_instance_up", "1 when the instance runs",
                               labels=["container", "deployment", "kind"])
        latest = {r["container"]: r for r in pool.fetchall(
            "SELECT DISTINCT ON (container) container, cpu_percent, memory_bytes"
            " FROM health_snapshots WHERE at > now() - interval '10 minutes'"
            " ORDER BY container, at DESC")}
        for row in pool.fetchall("SELECT name, deployment, kind, state FROM containers"
                                 " WHERE state <> 'removed' ORDER BY name"):
            labels = [row["name"], row["deployment"] or ""]
            up.add_metric(labels + [row["kind"]], 1 if row["state"] == "running" else 0)
            snap = latest.get(row["name"])
            if snap and snap["cpu_percent"] is not None:
                cpu.add_metric(labels, snap["cpu_percent"])
            if snap and snap["memory_bytes"] is not None:
                mem.add_metric(labels, snap["memory_bytes"])
        yield up
        yield cpu
        yield mem

        replicas = GaugeMetricFamily("harbormaster_deployment_replicas",
                                     "Desired, running and ready replicas",
                                     labels=["deployment", "kind"])
        for row in pool.fetchall("SELECT name, replicas, counts FROM deployments"):
            replicas.add_metric([row["name"], "desired"], row["replicas"])
            for key in ("running", "ready"):
                replicas.add_metric([row["name"], key], (row["counts"] or {}).get(key, 0))
        yield replicas


def exposition() -> Response:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(HTTP_LATENCY)
    registry.register(PlatformCollector())
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")


def install(app) -> None:
    @app.before_request
    def _start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = g.get("started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule else "unmatched"
            HTTP_LATENCY.labels(request.method, route, str(response.status_code)).observe(
                time.perf_counter() - started)
        return response

    app.add_url_rule("/metrics", "prometheus_metrics", exposition)
