"""APScheduler BlockingScheduler whose jobs only send messages.

It fires only while it holds a session-level Postgres advisory lock on its own
connection (db.locks): a second scheduler waits as a standby and takes over when the
first dies (its connection closes and Postgres releases the lock).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import time

import psycopg
import redis
from apscheduler.schedulers.blocking import BlockingScheduler

import config
from db import deployments, installation, jobs, locks, nodes, pool
from workers import messages

log = logging.getLogger("harbormaster.scheduler")
# How often a standby tries the lock: the longest a dead leader's work waits for a successor.
STANDBY_POLL = 0.5


def relay_outbox(cfg: config.Config) -> int:
    """Send queued jobs that never reached Redis (or were lost there)."""
    sent = 0
    for job in jobs.unsent(min_age=1.0, resend_after=max(cfg.outbox_resend_after, 30.0)):
        try:
            messages.send_job(job)
        except (redis.RedisError, OSError) as exc:
            log.warning("outbox: redis still unreachable: %s", exc)
            break
        jobs.mark_sent(str(job["id"]))
        sent += 1
    if sent:
        log.info("outbox: sent %d queued job(s)", sent)
    return sent


def sweep_jobs(cfg: config.Config) -> None:
    messages.send(messages.SWEEP_JOBS, messages.DEFAULT_QUEUE)


def reconcile_all(cfg: config.Config) -> None:
    """The backstop for lost messages and missed events: look at every deployment."""
    for name in deployments.names():
        messages.send(messages.CONVERGE_DEPLOYMENT, messages.DEFAULT_QUEUE, (name,))


def fresh_nodes(cfg: config.Config) -> list[str]:
    """Nodes whose agent beats: each gets its own per-node work on its own queue."""
    return [n["name"] for n in nodes.all_nodes()
            if n["age"] < cfg.heartbeat_stale_after and n["status"] != "down"]


def cleanup(cfg: config.Config) -> None:
    for node in fresh_nodes(cfg):
        messages.send(messages.CLEANUP, messages.node_queue(node))


def sample(cfg: config.Config) -> None:
    """One sweep per node with a fresh heartbeat."""
    for node in fresh_nodes(cfg):
        messages.send(messages.SAMPLE_NODE, messages.node_queue(node), (node,))


def measure_disk(cfg: config.Config) -> None:
    for node in fresh_nodes(cfg):
        messages.send(messages.MEASURE_DISK, messages.node_queue(node), (node,))


def collect_images(cfg: config.Config) -> None:
    """Image GC, per node: each executor collects its own engine's images."""
    for node in fresh_nodes(cfg):
        messages.send(messages.COLLECT_IMAGES, messages.node_queue(node), (node,))


def check_nodes(cfg: config.Config) -> None:
    messages.send(messages.CHECK_NODES, messages.DEFAULT_QUEUE)


def autoscale(cfg: config.Config) -> None:
    messages.send(messages.EVALUATE_AUTOSCALING, messages.DEFAULT_QUEUE)


def rollup_usage(cfg: config.Config) -> None:
    messages.send(messages.ROLLUP_USAGE, messages.DEFAULT_QUEUE)


def acquire_leadership(cfg: config.Config) -> psycopg.Connection:
    """Block until this process holds the leader lock; return the connection holding it."""
    announced = False
    while True:
        try:
            session = locks.leader_session(f"harbormaster-scheduler:{os.getpid()}")
            while True:
                if locks.try_lead(session):
                    log.info("scheduler %d is the leader", os.getpid())
                    installation.set_leader_node(cfg.node_name)
                    return session
                if not announced:
                    log.info("scheduler %d is a standby", os.getpid())
                    announced = True
                time.sleep(STANDBY_POLL)
        except (psycopg.Error, pool.Unavailable) as exc:
            log.warning("waiting for postgres: %s", exc)
            time.sleep(1.0)


def build(cfg: config.Config, leader: psycopg.Connection) -> BlockingScheduler:
    scheduler = BlockingScheduler(job_defaults={"coalesce": True, "max_instances": 1,
                                                "misfire_grace_time": 5})

    def guarded(fn):
        def run():
            try:
                fn(cfg)
            except (pool.Unavailable, psycopg.Error, redis.RedisError) as exc:
                log.warning("%s skipped: %s", fn.__name__, exc)
        run.__name__ = fn.__name__
        return run

    def check_leadership():
        if not locks.still_held(leader):
            # by design: the lock went with the connection, and a standby takes it
            log.warning("lost the leader connection; exiting so a standby takes over")
            os._exit(3)

    scheduler.add_job(guarded(relay_outbox), "interval", seconds=cfg.outbox_interval,
                      id="relay_outbox")
    scheduler.add_job(guarded(sweep_jobs), "interval", seconds=cfg.job_sweep_interval,
                      id="sweep_jobs")
    scheduler.add_job(guarded(reconcile_all), "interval", seconds=cfg.reconcile_interval,
                      id="reconcile_all")
    scheduler.add_job(guarded(cleanup), "interval", seconds=cfg.cleanup_interval, id="cleanup")
    scheduler.add_job(guarded(sample), "interval", seconds=cfg.sample_interval, id="sample")
    scheduler.add_job(guarded(measure_disk), "interval", seconds=cfg.disk_interval,
                      id="measure_disk")
    scheduler.add_job(guarded(collect_images), "interval", seconds=cfg.image_gc_interval,
                      id="collect_images")
    scheduler.add_job(guarded(autoscale), "interval", seconds=cfg.autoscale_interval,
                      id="autoscale")
    scheduler.add_job(guarded(check_nodes), "interval", seconds=cfg.heartbeat_interval,
                      id="check_nodes")
    scheduler.add_job(guarded(rollup_usage), "interval", seconds=cfg.usage_rollup_interval,
                      id="rollup_usage")
    scheduler.add_job(check_leadership, "interval", seconds=2, id="check_leadership")
    return scheduler


def main() -> int:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s scheduler %(levelname)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    cfg = config.from_env()
    pool.configure(cfg)
    messages.configure(cfg)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    leader = acquire_leadership(cfg)
    scheduler = build(cfg, leader)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
