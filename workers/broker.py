"""The Dramatiq broker (Redis) from configuration, and the middleware that keeps jobs rows.

JobsMiddleware turns each delivery of a job message into the job's record: running (and
one more attempt) before the actor, succeeded / failed after it. A redelivered message
whose job already ended, or a cancelled job, is skipped.
"""
from __future__ import annotations

import logging
import threading

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (AgeLimit, Callbacks, Pipelines, Retries,
                                 ShutdownNotifications, SkipMessage, TimeLimit)

import config
from db import jobs

log = logging.getLogger("harbormaster.broker")

# Retrying a Docker call a few times covers a restarting engine; more only delays the
# failure a user is waiting for.
MAX_RETRIES = 3


class JobsMiddleware(dramatiq.Middleware):
    """Record each job message's life in the jobs table."""

    def before_process_message(self, broker, message):
        job_id = message.options.get("job_id")
        if not job_id:
            return
        job = jobs.begin(job_id)
        if job is None:
            log.info("dropping message %s: job %s already ended", message.message_id, job_id)
            raise SkipMessage()
        message.options["job_attempt"] = job["attempts"]

    def after_process_message(self, broker, message, *, result=None, exception=None):
        job_id = message.options.get("job_id")
        if not job_id:
            return
        cap = config.load().result_cap_bytes
        if exception is None:
            jobs.finish(job_id, "succeeded", result=result, cap_bytes=cap)
        elif message.failed:
            jobs.finish(job_id, "failed", error=f"{type(exception).__name__}: {exception}",
                        cap_bytes=cap)
        # otherwise Retries will deliver it again: the job stays running


_broker = None
_lock = threading.Lock()


def get_broker() -> RedisBroker:
    """The process's broker, created once and installed as Dramatiq's global broker."""
    global _broker
    with _lock:
        if _broker is None:
            cfg = config.load()
            client = redis.Redis.from_url(cfg.redis_url, socket_connect_timeout=2,
                                          socket_timeout=15, health_check_interval=10)
            # JobsMiddleware first: Dramatiq runs after_* hooks in reverse order, so it
            # sees the message after Retries decided whether it failed for good
            middleware = [JobsMiddleware(), AgeLimit(),
                          TimeLimit(time_limit=int(cfg.job_time_limit * 1000)),
                          ShutdownNotifications(), Callbacks(), Pipelines(),
                          Retries(max_retries=MAX_RETRIES, min_backoff=500, max_backoff=5000)]
            _broker = RedisBroker(client=client, middleware=middleware,
                                  namespace=f"harbormaster",
                                  heartbeat_timeout=cfg.broker_heartbeat_timeout_ms,
                                  maintenance_chance=cfg.broker_maintenance_chance)
            dramatiq.set_broker(_broker)
        return _broker
