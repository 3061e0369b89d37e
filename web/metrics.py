"""Prometheus: GET /metrics in text format.

Counters and gauges of the platform come from Postgres at scrape time (so they are the
same whichever process did the work); HTTP latency histograms come from every gunicorn
worker through prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR).
"""
from __future__ import annotations

import time

from flask import Response, g, request
from prometheus_client import CollectorRegistry, Histogram, generate_latest, multiprocess
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, SummaryMetricFamily)

from core import startup as phases
from db import metrics as store, startup

HTTP_LATENCY = Histogram("harbormaster_http_request_duration_seconds",
                         "HTTP request latency by method, route and status",
                         ["method", "route", "status"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))


class PlatformCollector:
    """The platform's figures, read from Postgres at each scrape."""

    def collect(self):
        jobs = GaugeMetricFamily("harbormaster_jobs", "Jobs recorded, by kind and status",
                                 labels=["kind", "status"])
        for row in store.jobs_by_kind_and_status():
            jobs.add_metric([row["kind"], row["status"]], row["n"])
        yield jobs
        durations = SummaryMetricFamily("harbormaster_job_duration_seconds",
                                        "Duration of ended jobs, by kind", labels=["kind"])
        for row in store.job_durations():
            durations.add_metric([row["kind"]], row["n"], float(row["seconds"] or 0))
        yield durations
        actions = CounterMetricFamily("harbormaster_reconcile_actions",
                                      "Actions the reconciler took, by deployment and action",
                                      labels=["deployment", "action"])
        for row in store.reconcile_actions():
            actions.add_metric([row["deployment"], row["kind"].replace("instance_", "")],
                               row["n"])
        yield actions
        yield from instance_families()
        yield startup_family()
        replicas = GaugeMetricFamily("harbormaster_deployment_replicas",
                                     "Desired, running and ready replicas",
                                     labels=["deployment", "kind"])
        for row in store.deployment_replicas():
            replicas.add_metric([row["name"], "desired"], row["replicas"])
            for key in ("running", "ready"):
                replicas.add_metric([row["name"], key], (row["counts"] or {}).get(key, 0))
        yield replicas


def instance_families():
    cpu = GaugeMetricFamily("harbormaster_instance_cpu_percent",
                            "CPU use of an instance, % of its limit or of the host",
                            labels=["container", "deployment"])
    mem = GaugeMetricFamily("harbormaster_instance_memory_bytes",
                            "Memory use of an instance", labels=["container", "deployment"])
    up = GaugeMetricFamily("harbormaster_instance_up", "1 when the instance runs",
                           labels=["container", "deployment", "kind"])
    latest = {r["container"]: r for r in store.recent_snapshots()}
    for row in store.live_containers():
        labels = [row["name"], row["deployment"] or ""]
        up.add_metric(labels + [row["kind"]], 1 if row["state"] == "running" else 0)
        snap = latest.get(row["name"])
        if snap and snap["cpu_percent"] is not None:
            cpu.add_metric(labels, snap["cpu_percent"])
        if snap and snap["memory_bytes"] is not None:
            mem.add_metric(labels, snap["memory_bytes"])
    return up, cpu, mem


def startup_family() -> HistogramMetricFamily:
    """harbormaster_instance_startup_seconds{phase, pulled}: how long each phase of an
    instance's startup took (planned -> image ready -> created -> started -> running ->
    ready, and the total), counted once per instance when it is ready, the kubelet's
    buckets; cumulative in Postgres across restarts of the platform."""
    family = HistogramMetricFamily(
        "harbormaster_instance_startup_seconds",
        "Seconds each phase of an instance's startup took, by phase and whether its image "
        "was pulled for it", labels=["phase", "pulled"])
    for (phase, pulled), entry in sorted(startup.histogram().items()):
        buckets = [(str(float(le)), entry["buckets"].get(float(le), 0)) for le in phases.BUCKETS]
        family.add_metric([phase, "true" if pulled else "false"],
                          buckets + [("+Inf", entry["count"])], entry["sum"])
    return family


def exposition(cfg) -> Response:
    registry = CollectorRegistry()
    if cfg.prometheus_multiproc_dir:
        multiprocess.MultiProcessCollector(registry, path=cfg.prometheus_multiproc_dir)
    else:
        registry.register(HTTP_LATENCY)
    registry.register(PlatformCollector())
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")


def install(app, cfg) -> None:
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

    app.add_url_rule("/metrics", "prometheus_metrics", lambda: exposition(cfg))
