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
from dramatiq.errors import Retry
from dramatiq.middleware import (AgeLimit, Callbacks, MiddlewareError, Pipelines, Retries,
                                 ShutdownNotifications, SkipMessage, TimeLimit)

import config
from db import jobs
from db.pool import Unavailable

log = logging.getLogger("harbormaster.broker")

# Retrying a Docker call a few times covers a restarting engine; more only delays the
# failure a user is waiting for.
MAX_RETRIES = 3


class ResultsKeptByJobs(logging.Filter):
    """Dramatiq warns, for every message whose actor returns a value, that no Results
    middleware keeps it; JobsMiddleware keeps it in the job's row, so the warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "haven't added the Results middleware" not in record.getMessage()


class PostgresDown(MiddlewareError, Retry):
    """Postgres did not answer before a job's message ran: the actor must not run without
    the job's record (its attempt, a cancellation): the message comes back later. A
    MiddlewareError so Dramatiq does not run the actor anyway; a Retry so its delivering
    again is not logged as an error."""


class JobsMiddleware(dramatiq.Middleware):
    """Record each job message's life in the jobs table."""

    def __init__(self, result_cap_bytes: int):
        self.result_cap_bytes = result_cap_bytes

    def before_process_message(self, broker, message):
        job_id = message.options.get("job_id")
        if not job_id:
            return
        try:
            job = jobs.begin(job_id)
        except Unavailable as exc:
            raise PostgresDown(str(exc), delay=2000) from None
        if job is None:
            log.info("dropping message %s: job %s already ended", message.message_id, job_id)
            raise SkipMessage()
        message.options["job_attempt"] = job["attempts"]

    def after_process_message(self, broker, message, *, result=None, exception=None):
        job_id = message.options.get("job_id")
        if not job_id:
            return
        if isinstance(exception, PostgresDown):
            return  # nothing ran, nothing to record: it comes back
        try:
            if exception is None:
                jobs.finish(job_id, "succeeded", result=result, cap_bytes=self.result_cap_bytes)
            elif message.failed:
                jobs.finish(job_id, "failed", error=f"{type(exception).__name__}: {exception}",
                            cap_bytes=self.result_cap_bytes)
            # otherwise Retries will deliver it again: the job stays running
        except Unavailable as exc:
            # the job stays running; the sweeper fails it past its time limit if no
            # delivery records an end
            log.warning("the end of job %s was not recorded: %s", job_id, exc)


_broker = None
_lock = threading.Lock()


def configure(cfg: config.Config) -> RedisBroker:
    """Build this process's broker from its configuration and install it as Dramatiq's
    global broker (actors declared afterwards bind to it). Connecting is lazy."""
    global _broker
    with _lock:
        client = redis.Redis.from_url(cfg.redis_url, socket_connect_timeout=2,
                                      socket_timeout=15, health_check_interval=10)
        # JobsMiddleware first: Dramatiq runs after_* hooks in reverse order, so it
        # sees the message after Retries decided whether it failed for good
        middleware = [JobsMiddleware(cfg.result_cap_bytes), AgeLimit(),
                      TimeLimit(time_limit=int(cfg.job_time_limit * 1000)),
                      ShutdownNotifications(), Callbacks(), Pipelines(),
                      Retries(max_retries=MAX_RETRIES, min_backoff=500, max_backoff=5000)]
        _broker = RedisBroker(client=client, middleware=middleware, namespace="harbormaster",
                              heartbeat_timeout=cfg.broker_heartbeat_timeout_ms,
                              maintenance_chance=cfg.broker_maintenance_chance)
        dramatiq.set_broker(_broker)
        logging.getLogger("dramatiq.worker.WorkerThread").addFilter(ResultsKeptByJobs())
        return _broker


def get_broker() -> RedisBroker:
    if _broker is None:
        raise RuntimeError("workers.broker.configure(cfg) was not called in this process")
    return _broker
