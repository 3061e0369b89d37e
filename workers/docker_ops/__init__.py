"""The one place that imports docker: idempotent verbs over the Engine API, every error
mapped to Permanent or Transient (workers.docker_ops.engine). The verbs live by subject
(containers, images, networks, execs); callers use them through this package."""
from workers.docker_ops.containers import (close_events, configure_logs, create, create_args,
                                           events, find,
                                           inspect, kill, list_containers, list_sizes, pause, remove, engine_resources, restart, start,
                                           stats, stop, unpause, update)
from workers.docker_ops.engine import (Conflict, DockerError, NotFound, Permanent, Transient,
                                       call, client, configure, info, ping, publish_host,
                                       volume_names)
from workers.docker_ops.execs import ExecTimeout, exec_run
from workers.docker_ops.logs import follow_logs, logs
from workers.docker_ops.images import (dangling_images, image_disk, image_events, image_exists, import_rootfs,
                                       inspect_image, list_images, pull, push, remove_image,
                                       tag, used_image_ids)
from workers.docker_ops.networks import ensure_network

__all__ = ["close_events", "create", "create_args", "events", "find", "inspect", "kill",
           "list_containers", "list_sizes", "logs", "pause", "remove", "engine_resources",
           "restart", "start", "stats", "stop", "unpause", "update", "Conflict", "DockerError",
           "NotFound", "Permanent", "Transient", "call", "client", "configure", "info", "ping",
           "publish_host", "volume_names", "ExecTimeout", "exec_run", "image_exists", "import_rootfs",
           "inspect_image", "ensure_network", "dangling_images", "list_images", "pull", "push",
           "remove_image", "tag", "used_image_ids", "image_disk",
           "image_events", "follow_logs", "configure_logs"]
