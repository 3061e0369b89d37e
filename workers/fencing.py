"""Fencing: node work carries the node it is for and the epoch it was planned under; a node
refuses work for another node and drops work planned before it was last declared down."""
from __future__ import annotations

import config
from db import nodes
from workers.docker_ops import Permanent


class Fenced(Permanent):
    """Work for another node, or planned before this node was last declared down."""


def check_fence(args: dict, cfg: config.Config) -> None:
    if args["node"] != cfg.node_name:
        raise Fenced(f"work for node {args['node']!r} reached node {cfg.node_name!r}")
    row = nodes.get(cfg.node_name)
    if row is not None and args["epoch"] < row["epoch"]:
        raise Fenced(f"planned under epoch {args['epoch']} of {cfg.node_name}; the node is "
                     f"at epoch {row['epoch']} since it was declared down")
