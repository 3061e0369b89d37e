"""The container spec: everything a container is created from, in one frozen value.

Built once (from a request for a standalone container, from a deployment's template and
resources for an instance), stored as JSON, and turned into Docker's arguments in one
function (workers.docker_ops.create_args). Adding a field users can set means: the API
schema, a field here, its line in docker_ops, and a test.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class Resources:
    cpus: float | None = None          # cores (NanoCpus / 1e9)
    cpu_shares: int | None = None
    memory: int | None = None          # bytes
    pids_limit: int | None = None

    @classmethod
    def from_dict(cls, data: dict | None) -> "Resources":
        data = data or {}
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})

    def as_dict(self) -> dict:
        """Only what is set (the API's resources block)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Security:
    read_only: bool = False
    user: str | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ("ALL",)
    no_new_privileges: bool = True
    privileged: bool = False
    network_mode: str | None = None     # bridge, none, host
    pid_mode: str | None = None         # host

    @classmethod
    def from_dict(cls, data: dict | None) -> "Security":
        data = dict(data or {})
        for key in ("cap_add", "cap_drop"):
            if key in data and data[key] is not None:
                data[key] = tuple(data[key])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known and v is not None})


@dataclass(frozen=True)
class Mount:
    type: str                           # volume, tmpfs, bind
    target: str
    source: str | None = None
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    image: str
    command: tuple[str, ...] | str | None = None
    env: dict = field(default_factory=dict)             # name -> value (secrets apart)
    ports: dict = field(default_factory=dict)           # "80/tcp" -> host port or None
    resources: Resources = Resources()
    security: Security = Security()
    mounts: tuple[Mount, ...] = ()
    restart_policy: str = "no"
    labels: dict = field(default_factory=dict)          # the user's own labels
    working_dir: str | None = None
    stop_signal: str | None = None
    pull_policy: str = "if-not-present"   # if-not-present (every tag), always, never

    @classmethod
    def from_dict(cls, data: dict) -> "ContainerSpec":
        """From the stored JSON (or a deployment's template): unknown keys are ignored, so a
        template's other fields (health check, service) may sit beside."""
        command = data.get("command")
        return cls(
            image=data["image"],
            command=tuple(command) if isinstance(command, list) else command,
            env=dict(data.get("env") or {}), ports=dict(data.get("ports") or {}),
            resources=Resources.from_dict(data.get("resources")),
            security=Security.from_dict(data.get("security")),
            mounts=tuple(Mount(**m) for m in data.get("mounts") or ()),
            restart_policy=data.get("restart_policy") or "no",
            labels=dict(data.get("labels") or {}),
            working_dir=data.get("working_dir"), stop_signal=data.get("stop_signal"),
            pull_policy=data.get("pull_policy") or "if-not-present")

    def as_dict(self) -> dict:
        out = asdict(self)
        out["command"] = list(self.command) if isinstance(self.command, tuple) else self.command
        out["resources"] = self.resources.as_dict()
        out["security"] = {k: list(v) if isinstance(v, tuple) else v
                           for k, v in out["security"].items()}
        out["mounts"] = [asdict(m) for m in self.mounts]
        return out


#: every field of a container's spec, as a request names them
SPEC_FIELDS = tuple(f.name for f in fields(ContainerSpec))
#: a deployment's template: its instances' spec but for what the deployment owns apart
#: (resources apply live; Docker never restarts an instance), plus the platform's own
#: health check and service block. A change to any of them rolls out a new generation.
TEMPLATE_FIELDS = tuple(f for f in SPEC_FIELDS if f not in ("resources", "restart_policy")) \
    + ("health_check", "service", "placement", "mode")


def defaults() -> dict:
    """What an unset field of a template or spec means."""
    return {**ContainerSpec(image="").as_dict(), "health_check": None, "service": None,
            "placement": {"constraints": [], "strategy": "spread", "max_per_node": None,
                          "follow_volumes": True},
            "mode": "replicated"}


def of_template(template: dict, resources: dict | None) -> ContainerSpec:
    """A deployment instance's spec: its template, its deployment's resources, and the
    restart policy the reconciler owns (Docker never restarts an instance by itself)."""
    return ContainerSpec.from_dict({**template, "resources": resources or {},
                                    "restart_policy": "no"})
