"""How records are shown: the JSON of a container, a deployment, the service map, a node and
an engine's image, used by every blueprint that shows them."""
from __future__ import annotations

from core import placement, spec, startup as phases
from db import containers, deployments, health, nodes, registry, slots, startup
from web.context import settings


def container_json(row: dict) -> dict:
    ports = row["ports"] or {}
    first = next((p for p in ports.values() if p), None)
    return {
        "id": row["docker_id"], "name": row["name"], "image": row["image"],
        "state": row["state"], "health": row["health"], "kind": row["kind"],
        "deployment": row["deployment"], "slot": row["slot"], "generation": row["generation"],
        "incarnation": row["incarnation"], "role": row["role"],
        "node": row["node"], "ports": ports,
        "endpoint": f"http://{settings().publish_host}:{first}" if first else None,
        "resources": row["resources"] or {}, "labels": {
            k: v for k, v in (row["labels"] or {}).items()},
        "restarts": row["restarts"], "exit_code": row["exit_code"], "error": row["error"],
        "created_at": row["created_at"].isoformat(),
        "started_at": row["started_at"].isoformat() if row["started_at"] else None,
    }


def deployment_json(dep: dict, with_instances: bool = True) -> dict:
    template = dep["template"]
    counts = dep["counts"] or {}
    rows = containers.find(deployment=dep["name"], limit=10000) if with_instances else []
    unset = spec.defaults()
    return {
        "name": dep["name"], "replicas": dep["replicas"],
        "min_replicas": dep["min_replicas"], "max_replicas": dep["max_replicas"],
        "warm_pool": dep["warm_pool"],
        "generation": dep["generation"], "desired_version": dep["desired_version"],
        **{name: template.get(name, unset.get(name)) for name in spec.TEMPLATE_FIELDS},
        "secret_env_keys": template.get("secret_env_keys") or [],
        "resources": dep["resources"] or {}, "restart": dep["restart"],
        "update": dep["update_strategy"],
        "status": {"desired": counts.get("desired", dep["replicas"]),
                   "running": counts.get("running", 0), "ready": counts.get("ready", 0),
                   "healthy": counts.get("healthy", 0), "updated": counts.get("updated", 0),
                   # paused pool members that can serve: apart from the replicas' counts
                   "warm": counts.get("warm", 0),
                   "state": dep["state"], "reason": dep["state_reason"]},
        # a kept container is no instance: its slot's last_exit names it
        "instances": [container_json(r) for r in rows if r["role"] != "kept"],
        "slots": slots_json(dep["name"]) if with_instances else [],
        "created_at": dep["created_at"].isoformat(), "updated_at": dep["updated_at"].isoformat(),
    }


def service_map_json() -> dict:
    """Services with health, counts and key metrics; dependency edges with the health of
    their target."""
    endpoints = registry.find()
    by_service: dict[str, list] = {}
    for ep in endpoints:
        by_service.setdefault(ep["service"], []).append(ep)
    depends: dict[str, set] = {}
    for dep in deployments.find(limit=10000):
        service = (dep["template"] or {}).get("service")
        if service and not dep["deleting"]:
            by_service.setdefault(service["name"], [])
            depends.setdefault(service["name"], set()).update(service.get("depends_on") or [])
    for ep in endpoints:
        depends.setdefault(ep["service"], set()).update(ep["depends_on"] or [])
    load = {r["deployment"]: r for r in health.load_by_deployment()}
    nodes, status = [], {}
    for name, eps in sorted(by_service.items()):
        ready = sum(1 for e in eps if e["status"] == "UP" and e["health"] == "passing")
        state = "passing" if eps and ready == len(eps) else \
            "warning" if ready else "critical"
        status[name] = state
        owner = next((e["deployment"] for e in eps if e["deployment"]), None)
        dep = deployments.get(owner or name)
        figures = load.get(dep["name"] if dep else None, {})
        nodes.append({"id": name, "health": state, "instances": len(eps), "ready": ready,
                      "deployment": dep["name"] if dep else None,
                      "cpu": figures.get("cpu"), "memory": figures.get("memory")})
    edges = [{"from": source, "to": target, "health": status.get(target, "critical")}
             for source, targets in sorted(depends.items()) for target in sorted(targets)]
    return {"nodes": nodes, "edges": edges}




def fleet_states(rows: list[dict] | None = None) -> dict:
    """Every node (or those of ``rows``) as placement sees it (capacity after reserve, what
    is reserved), by name."""
    cfg = settings()
    usage = nodes.usage(cfg.default_cpu_request, cfg.default_memory_request)
    return {row["name"]: placement.node_state(
        row, usage.get(row["name"], {}),
        placement.node_is_ready(row["status"], row["age"], row["docker_ok"],
                                cfg.heartbeat_stale_after),
        cfg.node_reserve_cpus, cfg.node_reserve_memory)
        for row in (nodes.all_nodes() if rows is None else rows)}


def node_view(row: dict) -> dict:
    """One node's JSON from its row (its state computed from that same row: a node that
    registers or goes meanwhile cannot make the two disagree)."""
    return node_json(row, fleet_states([row])[row["name"]])


def node_json(row: dict, state: placement.NodeState) -> dict:
    return {
        "name": row["name"], "status": row["status"], "ready": state.ready,
        "availability": row["availability"], "address": row["address"],
        "labels": dict(row["all_labels"] or {}), "reported_labels": row["labels"] or {},
        "label_overrides": row["label_overrides"] or {}, "epoch": row["epoch"],
        "heartbeat_age": round(float(row["age"]), 1),
        "heartbeat_at": row["heartbeat_at"].isoformat(),
        "down_since": row["down_since"].isoformat() if row["down_since"] else None,
        "docker": {"ok": row["docker_ok"], "version": row["docker_version"],
                   "latency_ms": row["docker_latency_ms"], "error": row["docker_error"]},
        "capacity": {"cpus": round(state.cpus, 3), "memory": state.memory,
                     "reported_cpus": row["cpus"], "reported_memory": row["memory_bytes"],
                     "cpus_override": row["cpus_override"],
                     "memory_override": row["memory_override"]},
        "reserved": {"cpus": round(state.reserved_cpus, 3), "memory": state.reserved_memory},
        "free": {"cpus": round(max(0.0, state.cpus - state.reserved_cpus), 3),
                 "memory": max(0, state.memory - state.reserved_memory)},
        "instances": state.instances, "fixed_ports": sorted(state.used_ports),
        "volumes": sorted(state.volumes)}


def slots_json(name: str) -> list[dict]:
    """Where each slot of a deployment is placed, or why nowhere, and its last exit (the
    container kept for logs --previous, its exit code and why: exited, OOM killed, health
    check failed)."""
    return [{"slot": slot, "node": row["node"], "reason": row["placed_reason"],
             "pending": row["pending_reason"], "last_exit": last_exit_json(row)}
            for slot, row in sorted(slots.assignments(name).items())
            if row["node"] or row["pending_reason"]]


def last_exit_json(row: dict) -> dict | None:
    if not row["last_exit_container"]:
        return None
    return {"container": row["last_exit_container"], "exit_code": row["last_exit_code"],
            "reason": row["last_exit_reason"], "at": stamp(row["last_exit_at"])}


def stamp(value) -> str | None:
    return value.isoformat() if value else None


def image_json(row: dict) -> dict:
    """One image of one node's engine (db.images.engine_images' row) with what uses it."""
    users = row["users"] or []
    return {
        "node": row["node"], "id": row["image_id"],
        "short_id": row["image_id"].removeprefix("sha256:")[:12],
        "tags": list(row["tags"] or []), "digests": list(row["digests"] or []),
        "size": row["size_bytes"], "created": stamp(row["created_at"]),
        "pulled": stamp(row["pulled_at"]), "last_used": stamp(row["last_used_at"]),
        "containers": [u["name"] for u in users],
        "deployments": sorted({u["deployment"] for u in users if u.get("deployment")}),
        "labels": dict(row["labels"] or {}), "listed_at": stamp(row["listed_at"])}


def startup_json(name: str) -> dict | None:
    """When an instance was planned, had its image, was created, started (Docker's
    StartedAt), seen running and ready, and the seconds of each phase (monotonic)."""
    row = startup.get(name)
    if row is None:
        return None
    moments = {m: row[f"{m}_at"] for m in phases.MOMENTS}
    seconds = phases.phases({m: v.timestamp() if v else None for m, v in moments.items()}) \
        if row["ready_at"] else None
    return {"pulled": row["pulled"], **{m: stamp(v) for m, v in moments.items()},
            "seconds": {k: round(v, 3) for k, v in seconds.items()} if seconds else None}
