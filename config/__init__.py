"""Harbormaster configuration: one frozen dataclass built from the environment.

This is the only module that reads ``os.environ``. Each process builds its ``Config`` once
at start (``from_env()``) and passes it on (``create_app(cfg)``, ``Agent(cfg)``, the
scheduler's ``build(cfg)``, the worker's ``workers.runtime.setup``); nothing caches it
behind the process's back, so a test profile is just another set of environment variables.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout (config/ is one of its packages)


def _int(env: dict, name: str, default: int) -> int:
    return int(env.get(name, default))


def _float(env: dict, name: str, default: float) -> float:
    return float(env.get(name, default))


def _bool(env: dict, name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _labels(text: str) -> tuple:
    """"zone=a,disk=ssd" -> (("disk", "ssd"), ("zone", "a"))."""
    pairs = []
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        if not part.strip():
            continue
        if not sep or not key.strip():
            raise ValueError(f"HARBORMASTER_NODE_LABELS: {part!r} is not key=value")
        pairs.append((key.strip(), value.strip()))
    return tuple(sorted(pairs))


def _periods(text: str) -> tuple:
    """"3600,86400" -> (3600, 86400): the hour and the day of usage rollups, each a multiple
    of the one before (a day's rows are sums of its hours')."""
    hour, day = (int(part) for part in text.split(","))
    if hour <= 0 or day % hour:
        raise ValueError(f"HARBORMASTER_USAGE_PERIODS: {text!r} is not 'hour,day' seconds "
                         "with the day a multiple of the hour")
    return hour, day


def _price(env: dict, name: str) -> float | None:
    value = env.get(name, "").strip()
    return float(value) if value else None


def _networks(text: str) -> tuple:
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database_url: str
    redis_url: str
    docker_host: str | None
    node_name: str
    node_address: str            # where this node's published ports answer (discovery)
    node_labels: tuple           # ((key, value), ...) reported by this node's agent
    cluster_id_override: str | None

    # web
    web_host: str
    web_port: int
    web_threads: int
    web_workers: int             # gunicorn processes; 0: from the cores, within the budget
    wait_cap: float              # longest ?wait= honoured; below gunicorn's timeout
    max_body_bytes: int
    result_cap_bytes: int

    # timings (seconds)
    heartbeat_interval: float
    heartbeat_stale_after: float
    node_down_after: float       # a node silent (or without Docker) this long is down
    agent_full_sync_interval: float
    outbox_interval: float
    outbox_resend_after: float
    job_time_limit: float
    job_sweep_interval: float

    # broker
    broker_heartbeat_timeout_ms: int
    broker_maintenance_chance: int
    worker_threads: int
    worker_processes: int
    executor_threads: int

    # container policy
    publish_host: str
    allow_privileged: bool
    allow_bind_mounts: bool
    allow_host_namespaces: bool
    allow_extra_capabilities: bool

    # deployments and placement
    default_cpu_request: float   # what an instance without a CPU limit reserves (cores)
    default_memory_request: int  # ... without a memory limit (bytes)
    node_reserve_cpus: float     # kept free on every node for the host itself
    node_reserve_memory: int
    max_replicas: int            # the server's cap on replicas (and on unset max bounds)
    reconcile_concurrency: int
    reconcile_interval: float
    drain_delay: float
    grace_period: float
    cleanup_interval: float
    retired_instance_age: float
    orphan_grace: float
    event_retention: float
    job_retention: float

    # health
    sample_interval: float
    disk_interval: float
    snapshot_retention: float
    warning_threshold: float
    critical_threshold: float
    high_cpu_threshold: float
    high_memory_threshold: float
    alert_rearm_margin: float
    probe_tick: float
    autoscale_interval: float

    # pool sizes
    db_pool_max: int
    db_pool_timeout: float

    # security
    metrics_networks: tuple = field(default=())
    legacy_open_networks: tuple = field(default=())
    legacy_open: bool = False
    rate_limit: str = "600/minute"
    rate_limit_per_address: str = "1200/minute"
    rate_limit_enabled: bool = True
    token_cache_ttl: float = 5.0  # a verified token is trusted this long per web process
    test_hooks: bool = False     # registers workers.testing's actors (the test suite's)
    redis_port: int = 6389       # the embedded Redis's port (when REDIS_URL is not set)
    prometheus_multiproc_dir: str | None = None  # prometheus-client's multiprocess files

    # images (issue 15): pull limits (Nomad's defaults) and image GC (the kubelet's numbers)
    pull_timeout: float = 300.0          # a pull or push taking longer fails
    pull_stall_timeout: float = 120.0    # ... or moving no byte for this long
    pull_backoff_max: float = 300.0      # the longest wait after failed pulls of one reference
    image_gc_interval: float = 60.0
    image_min_age: float = 120.0         # an image unused for less is never collected
    image_gc_high: float = 85.0          # image disk % that starts a collection ...
    image_gc_low: float = 80.0           # ... which removes images until under this
    image_cache_size: int = 0            # bytes of pulled images per node (0: no limit)
    image_max_age: float = 0.0           # unused this long -> collected (0: never)

    # usage metering (issue 17)
    usage_periods: tuple = (3600, 86400)     # the hour and the day of rollups (seconds)
    usage_rollup_interval: float = 60.0      # the scheduler sends a rollup this often
    usage_close_delay: float = 60.0          # a period closes this long after it ends
    usage_late_window: float = 86400.0       # samples this late after an instance's end count
    usage_retention: float = 90 * 86400.0    # hourly rows kept (raw snapshots: days)
    usage_daily_retention: float = 400 * 86400.0
    price_cpu_core_hour: float | None = None     # optional prices: a cost column
    price_memory_gb_hour: float | None = None    # per GiB-hour of billable memory
    # live streams (issue 16)
    stream_cap: int = 32                 # open streams per web process (then 503)
    stream_heartbeat: float = 15.0       # a comment this often on an idle stream
    follow_lease: float = 10.0           # a log follow lapses unless renewed within this
    follow_maxlen: int = 10000           # lines a follow's Redis Stream keeps
    log_max_size: str = "10m"            # json-file log of each container ("": unbounded)
    log_max_file: int = 3
    kept_instance_age: float = 3600.0    # a kept (dead) instance is removed after this
    slow_start: float = 5.0              # planned-to-ready past this -> a slow_start event

    @property
    def redelivery_window(self) -> float:
        """Seconds after which Dramatiq hands a dead worker's message to another."""
        return self.broker_heartbeat_timeout_ms / 1000.0

    @property
    def web_url(self) -> str:
        host = self.web_host if ":" not in self.web_host else f"[{self.web_host}]"
        return f"http://{host}:{self.web_port}"


def from_env(env: dict | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("HARBORMASTER_DATA", ROOT / ".harbormaster")).resolve()
    return Config(
        data_dir=data_dir,
        database_url=env.get("DATABASE_URL", ""),
        redis_url=env.get("REDIS_URL", ""),
        docker_host=env.get("DOCKER_HOST") or None,
        node_name=env.get("HARBORMASTER_NODE", "local"),
        node_address=env.get("HARBORMASTER_NODE_ADDRESS", "127.0.0.1"),
        node_labels=_labels(env.get("HARBORMASTER_NODE_LABELS", "")),
        cluster_id_override=env.get("HARBORMASTER_CLUSTER_ID") or None,
        web_host=env.get("HARBORMASTER_WEB_HOST", "127.0.0.1"),
        web_port=_int(env, "HARBORMASTER_WEB_PORT", 8000),
        web_threads=_int(env, "HARBORMASTER_WEB_THREADS", 16),
        web_workers=int(env.get("HARBORMASTER_WEB_WORKERS") or 0),
        wait_cap=_float(env, "HARBORMASTER_WAIT_CAP", 110.0),
        max_body_bytes=_int(env, "HARBORMASTER_MAX_BODY_BYTES", 1024 * 1024),
        result_cap_bytes=_int(env, "HARBORMASTER_RESULT_CAP_BYTES", 64 * 1024),
        heartbeat_interval=_float(env, "HARBORMASTER_HEARTBEAT_INTERVAL", 2.0),
        heartbeat_stale_after=_float(env, "HARBORMASTER_HEARTBEAT_STALE_AFTER", 6.0),
        # Swarm's 5 s heartbeat x 3
        node_down_after=_float(env, "HARBORMASTER_NODE_DOWN_AFTER", 15.0),
        agent_full_sync_interval=_float(env, "HARBORMASTER_AGENT_SYNC_INTERVAL", 30.0),
        outbox_interval=_float(env, "HARBORMASTER_OUTBOX_INTERVAL", 2.0),
        outbox_resend_after=_float(env, "HARBORMASTER_OUTBOX_RESEND_AFTER", 5.0),
        job_time_limit=_float(env, "HARBORMASTER_JOB_TIME_LIMIT", 300.0),
        job_sweep_interval=_float(env, "HARBORMASTER_JOB_SWEEP_INTERVAL", 10.0),
        broker_heartbeat_timeout_ms=_int(env, "HARBORMASTER_BROKER_HEARTBEAT_TIMEOUT_MS", 60000),
        broker_maintenance_chance=_int(env, "HARBORMASTER_BROKER_MAINTENANCE_CHANCE", 1000),
        worker_threads=_int(env, "HARBORMASTER_WORKER_THREADS", 8),
        worker_processes=_int(env, "HARBORMASTER_WORKER_PROCESSES", 1),
        executor_threads=_int(env, "HARBORMASTER_EXECUTOR_THREADS", 8),
        publish_host=env.get("HARBORMASTER_PUBLISH_HOST", "127.0.0.1"),
        allow_privileged=_bool(env, "HARBORMASTER_ALLOW_PRIVILEGED", False),
        allow_bind_mounts=_bool(env, "HARBORMASTER_ALLOW_BIND_MOUNTS", False),
        allow_host_namespaces=_bool(env, "HARBORMASTER_ALLOW_HOST_NAMESPACES", False),
        allow_extra_capabilities=_bool(env, "HARBORMASTER_ALLOW_EXTRA_CAPABILITIES", False),
        default_cpu_request=_float(env, "HARBORMASTER_DEFAULT_CPU_REQUEST", 0.1),
        default_memory_request=_int(env, "HARBORMASTER_DEFAULT_MEMORY_REQUEST", 64 << 20),
        node_reserve_cpus=_float(env, "HARBORMASTER_NODE_RESERVE_CPUS", 0.0),
        node_reserve_memory=_int(env, "HARBORMASTER_NODE_RESERVE_MEMORY", 256 << 20),
        max_replicas=_int(env, "HARBORMASTER_MAX_REPLICAS", 1000),
        reconcile_concurrency=_int(env, "HARBORMASTER_RECONCILE_CONCURRENCY", 8),
        reconcile_interval=_float(env, "HARBORMASTER_RECONCILE_INTERVAL", 10.0),
        drain_delay=_float(env, "HARBORMASTER_DRAIN_DELAY", 1.0),
        grace_period=_float(env, "HARBORMASTER_GRACE_PERIOD", 10.0),
        cleanup_interval=_float(env, "HARBORMASTER_CLEANUP_INTERVAL", 60.0),
        retired_instance_age=_float(env, "HARBORMASTER_RETIRED_INSTANCE_AGE", 3600.0),
        orphan_grace=_float(env, "HARBORMASTER_ORPHAN_GRACE", 300.0),
        event_retention=_float(env, "HARBORMASTER_EVENT_RETENTION", 30 * 86400.0),
        job_retention=_float(env, "HARBORMASTER_JOB_RETENTION", 7 * 86400.0),
        sample_interval=_float(env, "HARBORMASTER_SAMPLE_INTERVAL", 15.0),
        disk_interval=_float(env, "HARBORMASTER_DISK_INTERVAL", 300.0),
        snapshot_retention=_float(env, "HARBORMASTER_SNAPSHOT_RETENTION", 7 * 86400.0),
        warning_threshold=_float(env, "HARBORMASTER_WARNING_THRESHOLD", 75.0),
        critical_threshold=_float(env, "HARBORMASTER_CRITICAL_THRESHOLD", 90.0),
        high_cpu_threshold=_float(env, "HARBORMASTER_HIGH_CPU_THRESHOLD", 80.0),
        high_memory_threshold=_float(env, "HARBORMASTER_HIGH_MEMORY_THRESHOLD", 90.0),
        alert_rearm_margin=_float(env, "HARBORMASTER_ALERT_REARM_MARGIN", 10.0),
        probe_tick=_float(env, "HARBORMASTER_PROBE_TICK", 0.25),
        autoscale_interval=_float(env, "HARBORMASTER_AUTOSCALE_INTERVAL", 15.0),
        db_pool_max=_int(env, "HARBORMASTER_DB_POOL_MAX", 20),
        db_pool_timeout=_float(env, "HARBORMASTER_DB_POOL_TIMEOUT", 5.0),
        metrics_networks=_networks(env.get("HARBORMASTER_METRICS_NETWORKS", "127.0.0.0/8,::1/128")),
        legacy_open=_bool(env, "HARBORMASTER_LEGACY_OPEN", False),
        legacy_open_networks=_networks(env.get("HARBORMASTER_LEGACY_OPEN_NETWORKS",
                                               "127.0.0.0/8,::1/128")),
        rate_limit=env.get("HARBORMASTER_RATE_LIMIT", "600/minute"),
        rate_limit_per_address=env.get("HARBORMASTER_RATE_LIMIT_PER_ADDRESS", "1200/minute"),
        rate_limit_enabled=_bool(env, "HARBORMASTER_RATE_LIMIT_ENABLED", True),
        token_cache_ttl=_float(env, "HARBORMASTER_TOKEN_CACHE_TTL", 5.0),
        test_hooks=_bool(env, "HARBORMASTER_TEST_HOOKS", False),
        redis_port=_int(env, "HARBORMASTER_REDIS_PORT", 6389),
        prometheus_multiproc_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
        pull_timeout=_float(env, "HARBORMASTER_PULL_TIMEOUT", 300.0),
        pull_stall_timeout=_float(env, "HARBORMASTER_PULL_STALL_TIMEOUT", 120.0),
        pull_backoff_max=_float(env, "HARBORMASTER_PULL_BACKOFF_MAX", 300.0),
        image_gc_interval=_float(env, "HARBORMASTER_IMAGE_GC_INTERVAL", 60.0),
        image_min_age=_float(env, "HARBORMASTER_IMAGE_MIN_AGE", 120.0),
        image_gc_high=_float(env, "HARBORMASTER_IMAGE_GC_HIGH", 85.0),
        image_gc_low=_float(env, "HARBORMASTER_IMAGE_GC_LOW", 80.0),
        image_cache_size=_int(env, "HARBORMASTER_IMAGE_CACHE_SIZE", 0),
        image_max_age=_float(env, "HARBORMASTER_IMAGE_MAX_AGE", 0.0),
        usage_periods=_periods(env.get("HARBORMASTER_USAGE_PERIODS", "3600,86400")),
        usage_rollup_interval=_float(env, "HARBORMASTER_USAGE_ROLLUP_INTERVAL", 60.0),
        usage_close_delay=_float(env, "HARBORMASTER_USAGE_CLOSE_DELAY", 60.0),
        usage_late_window=_float(env, "HARBORMASTER_USAGE_LATE_WINDOW", 86400.0),
        usage_retention=_float(env, "HARBORMASTER_USAGE_RETENTION", 90 * 86400.0),
        usage_daily_retention=_float(env, "HARBORMASTER_USAGE_DAILY_RETENTION", 400 * 86400.0),
        price_cpu_core_hour=_price(env, "HARBORMASTER_PRICE_CPU_CORE_HOUR"),
        price_memory_gb_hour=_price(env, "HARBORMASTER_PRICE_MEMORY_GB_HOUR"),
        stream_cap=_int(env, "HARBORMASTER_STREAM_CAP", 32),
        stream_heartbeat=_float(env, "HARBORMASTER_STREAM_HEARTBEAT", 15.0),
        follow_lease=_float(env, "HARBORMASTER_FOLLOW_LEASE", 10.0),
        follow_maxlen=_int(env, "HARBORMASTER_FOLLOW_MAXLEN", 10000),
        log_max_size=env.get("HARBORMASTER_LOG_MAX_SIZE", "10m"),
        log_max_file=_int(env, "HARBORMASTER_LOG_MAX_FILE", 3),
        kept_instance_age=_float(env, "HARBORMASTER_KEPT_INSTANCE_AGE", 3600.0),
        slow_start=_float(env, "HARBORMASTER_SLOW_START", 5.0),
    )


def process_environment() -> dict:
    """A copy of this process's environment, for the processes it starts."""
    return dict(os.environ)
