"""Actor names, their queues, and ``send``: what web and the scheduler import to enqueue.

Senders never import the actors module (it pulls in docker); a message is addressed by
actor name. Docker work for a node goes to the queue ``node.<name>``; the rest to
``default``.
"""
from __future__ import annotations

import logging

import dramatiq
import redis

import config
from db import jobs
from workers import broker

log = logging.getLogger("harbormaster.messages")

DEFAULT_QUEUE = "default"

# container lifecycle (one job each)
CREATE_CONTAINER = "create_container"
START_CONTAINER = "start_container"
STOP_CONTAINER = "stop_container"
RESTART_CONTAINER = "restart_container"
KILL_CONTAINER = "kill_container"
PAUSE_CONTAINER = "pause_container"
UNPAUSE_CONTAINER = "unpause_container"
REMOVE_CONTAINER = "remove_container"
UPDATE_CONTAINER_RESOURCES = "update_container_resources"
READ_CONTAINER_LOGS = "read_container_logs"
EXEC_IN_CONTAINER = "exec_in_container"
READ_CONTAINER_STATS = "read_container_stats"

# deployments (jobs)
RECONCILE_DEPLOYMENT = "reconcile_deployment"
EXECUTE_ON_NODE = "execute_on_node"      # a node's share of a pass, on node.<name>
RECLAIM_NODE = "reclaim_node"            # a node back from down removes its stale instances
DRAIN_NODE = "drain_node"                # every instance off a node, start-first
#: the longest drain deadline a request may ask for (seconds): the drain job runs that long,
#: past the usual job time limit
MAX_DRAIN_DEADLINE = 86400

# images (jobs on node.<name>; args in workers/images.py)
PULL_IMAGE = "pull_image"                # {"image", "node"}
PUSH_IMAGE = "push_image"                # {"image", "node"}
TAG_IMAGE = "tag_image"                  # {"source", "target", "node"}
REMOVE_IMAGE = "remove_image"            # {"image", "node", "force"}
PRUNE_IMAGES = "prune_images"            # {"node"}
PREPARE_IMAGE = "prepare_image"          # {"image", "policy", "node"}: a rollout's pull
COLLECT_IMAGES = "collect_images"        # image GC of one node (periodic, no job row)

# periodic and internal (no job rows)
CONVERGE_DEPLOYMENT = "converge_deployment"
RAISE_FOR_TEST = "raise_for_test"  # workers.testing's, with HARBORMASTER_TEST_HOOKS only
CLEANUP = "cleanup"
CHECK_NODES = "check_nodes"
SWEEP_JOBS = "sweep_jobs"
SAMPLE_NODE = "sample_node"
MEASURE_DISK = "measure_disk"
EVALUATE_AUTOSCALING = "evaluate_autoscaling"
ROLLUP_USAGE = "rollup_usage"            # usage metering's rollup (issue 17)


# a queued job sent this many times without a worker starting it is failed by sweep_jobs
MAX_SENDS = 5


def configure(cfg: config.Config) -> None:
    """Senders (web, the scheduler, the agent) configure the broker they send through."""
    broker.configure(cfg)


def node_queue(node: str) -> str:
    return f"node.{node}"


def send(actor_name: str, queue: str, args: tuple = (), job_id: str | None = None,
         delay: int | None = None) -> str:
    """Enqueue one message (``delay`` in ms); raises redis errors when Redis is down."""
    options = {"job_id": job_id} if job_id else {}
    message = dramatiq.Message(queue_name=queue, actor_name=actor_name, args=args, kwargs={},
                               options=options)
    broker.get_broker().enqueue(message, delay=delay)
    return message.message_id


def send_job(job: dict) -> str:
    """Enqueue the message of one jobs row (its only argument is the job id)."""
    return send(job["actor"], job["queue"], (str(job["id"]),), job_id=str(job["id"]))


def send_or_leave(actor_name: str, queue: str, args: tuple = ()) -> None:
    """A trigger that something else (the scheduler's backstop) also sends: with Redis down,
    say so and go on."""
    try:
        send(actor_name, queue, args)
    except (redis.RedisError, OSError) as exc:
        log.warning("%s not sent (the backstop will): %s", actor_name, exc)


def send_job_or_leave(job: dict) -> None:
    """Send a committed job's message; with Redis down, leave it to the scheduler's outbox
    relay (the row says it is queued and unsent). A job created as sent
    (``jobs.create(sent=True)``) needs no write after a successful send."""
    created_sent = job.get("sent_at") is not None
    try:
        send_job(job)
        if not created_sent:
            jobs.mark_sent(str(job["id"]))
    except (redis.RedisError, OSError) as exc:
        log.warning("job %s left for the outbox relay: %s", job["id"], exc)
        if created_sent:
            jobs.mark_unsent(str(job["id"]))
