"""Pydantic models of the API's requests and answers (api-sketch.md's shapes)."""
from __future__ import annotations

import copy
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

import validation
from web.context import settings

DEFAULT_CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE",
                "SETGID", "SETUID"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def model_json_schema(cls, *args, **kwargs) -> dict[str, Any]:
        """flask-openapi3 asks for a query model's JSON schema at every request (to find its
        list fields): about 0.3 ms of CPU each time, so it is made once per model and
        arguments; callers get a copy (the document builder edits what it gets)."""
        key = (cls, args, tuple(sorted(kwargs.items())))
        schema = _SCHEMAS.get(key)
        if schema is None:
            schema = _SCHEMAS[key] = super().model_json_schema(*args, **kwargs)
        return copy.deepcopy(schema)


_SCHEMAS: dict[tuple, dict[str, Any]] = {}


# The formats users type, checked by the validation module (its messages are the ones users
# see) and documented in the OpenAPI schema with the same rules, so that generated clients
# and fuzzers know them.
ImageRef = Annotated[str, AfterValidator(validation.check_image), WithJsonSchema({
    "type": "string", "maxLength": 255, "pattern": validation.IMAGE_RE.pattern,
    "examples": ["nginx:alpine", "registry.local:5000/team/app:v2"]})]
ContainerName = Annotated[str, AfterValidator(validation.check_name), WithJsonSchema({
    "type": "string", "pattern": validation.NAME_RE.pattern})]
EnvMap = Annotated[dict[str, str], AfterValidator(validation.check_env), WithJsonSchema({
    "type": "object", "propertyNames": {"pattern": validation.ENV_KEY_RE.pattern},
    "additionalProperties": {"type": "string"}})]
PortMap = Annotated[dict[str, Optional[int]], AfterValidator(validation.normalise_ports),
                    WithJsonSchema({
                        "type": "object", "propertyNames": {"pattern": validation.PORT_RE.pattern},
                        "additionalProperties": {"anyOf": [
                            {"type": "integer", "minimum": 1, "maximum": 65535},
                            {"type": "null"}]},
                        "description": "container port (80, 80/tcp, 53/udp) -> host port on "
                                       "127.0.0.1, or null for any free port"})]
ReplicaCount = Annotated[int, AfterValidator(
    lambda value: validation.check_replica_count(value, settings().max_replicas)),
    WithJsonSchema({"type": "integer", "minimum": 0,
                    "description": "0 .. the server's cap (HARBORMASTER_MAX_REPLICAS, "
                                   "1000 by default)"})]
WorkingDir = Annotated[str, Field(max_length=255, pattern=r"^/[^\x00]*$",
                                  description="absolute path the command runs in")]
PullPolicy = Annotated[Literal["if-not-present", "always", "never"], Field(
    description="when the image is pulled: if-not-present (the default, for every tag), "
                "always (before each create), never (it must be on the node)")]
StopSignal = Annotated[str, Field(pattern=validation.SIGNAL_RE.pattern,
                                  description="the signal a stop sends first (SIGTERM)")]
LabelMap = Annotated[dict[str, str], AfterValidator(validation.check_labels), WithJsonSchema({
    "type": "object", "propertyNames": {"minLength": 1, "maxLength": 128},
    "additionalProperties": {"type": "string"},
    "description": "keys starting with harbormaster. and managed-by are reserved"})]


# --- errors and jobs ----------------------------------------------------------

class ErrorOut(BaseModel):
    error: str
    detail: str
    fields: Optional[dict[str, str]] = None


class Progress(BaseModel):
    done: int
    total: int
    message: str


class JobOut(BaseModel):
    id: str
    kind: str
    target: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: Optional[Progress] = None
    result: Optional[dict[str, Any]] = None
    error: Optional[str] = None
    attempts: int
    requested_by: Optional[str] = None
    created_at: datetime
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None


class JobList(BaseModel):
    items: list[JobOut]
    next: Optional[str] = None


class JobPath(BaseModel):
    job_id: uuid.UUID


class WaitQuery(Strict):
    wait: Optional[str] = Field(None, description="seconds (30) or a suffixed form (30s, 5m)")


class JobListQuery(Strict):
    status: Optional[Literal["queued", "running", "succeeded", "failed", "cancelled"]] = None
    kind: Optional[str] = Field(None, max_length=64, pattern=r"^[a-z_]+$")
    limit: int = Field(50, ge=1, le=500)
    cursor: Optional[str] = Field(None, max_length=120)


# --- containers -----------------------------------------------------------------

def docker_memory(size: int) -> int:
    if size < 6 * 1024 * 1024:
        raise ValueError("memory must be at least 6m (Docker's minimum)")
    return size


#: CPUs as users write them ("0.5", 2) and sizes ("256m", "1g", bytes), as numbers
CpuCount = Annotated[float | str, AfterValidator(validation.parse_cpus)]
ByteSize = Annotated[int | str, AfterValidator(validation.parse_size)]


class Resources(Strict):
    cpus: Optional[CpuCount] = None
    cpu_shares: Optional[int] = Field(None, ge=2, le=262144)
    memory: Optional[Annotated[ByteSize, AfterValidator(docker_memory)]] = None
    pids_limit: Optional[int] = Field(None, ge=1, le=4194304)

    def normalised(self) -> dict:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Security(Strict):
    read_only: bool = False
    user: Optional[str] = Field(None, max_length=64, pattern=r"^[a-zA-Z0-9_.:-]+$")
    cap_add: list[str] = Field(default_factory=list, max_length=64)
    cap_drop: list[str] = Field(default_factory=lambda: ["ALL"], max_length=64)
    no_new_privileges: bool = True
    privileged: bool = False
    network_mode: Optional[Literal["bridge", "none", "host"]] = None
    pid_mode: Optional[Literal["host"]] = None

    @field_validator("cap_add", "cap_drop")
    @classmethod
    def _caps(cls, values):
        out = []
        for value in values:
            cap = value.upper()
            cap = cap[4:] if cap.startswith("CAP_") else cap
            if not cap.replace("_", "").isalnum() or len(cap) > 32:
                raise ValueError(f"{value!r} is not a capability name")
            out.append(cap)
        return out

    def effective_cap_add(self) -> list[str]:
        """With cap_drop ALL, the default set comes back unless the user dropped some."""
        if "ALL" in self.cap_drop:
            return sorted(set(DEFAULT_CAPS) | set(self.cap_add))
        return sorted(set(self.cap_add))

    def extra_capabilities(self) -> list[str]:
        return sorted(set(self.cap_add) - set(DEFAULT_CAPS))


class MountSpec(Strict):
    type: Literal["volume", "tmpfs", "bind"]
    source: Optional[str] = Field(None, max_length=255)
    target: str = Field(max_length=255, pattern=r"^/")
    read_only: bool = False

    @field_validator("source")
    @classmethod
    def _source(cls, value):
        if value is not None and ".." in value.split("/"):
            raise ValueError("a mount source may not contain '..'")
        return value


class ContainerCreate(Strict):
    image: ImageRef
    name: Optional[ContainerName] = None
    command: Optional[list[str] | str] = None
    env: EnvMap = Field(default_factory=dict)
    secret_env: EnvMap = Field(default_factory=dict)
    ports: PortMap = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    restart_policy: Literal["no", "always", "unless-stopped", "on-failure"] = "no"
    labels: LabelMap = Field(default_factory=dict)
    security: Security = Field(default_factory=Security)
    mounts: list[MountSpec] = Field(default_factory=list, max_length=32)
    working_dir: Optional[WorkingDir] = None
    stop_signal: Optional[StopSignal] = None
    pull_policy: PullPolicy = "if-not-present"
    node: Optional[str] = Field(None, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                                description="the node to run on (default: placement's choice)")


class ContainerOut(BaseModel):
    id: Optional[str] = None
    name: str
    image: str
    state: str
    health: str
    kind: str
    deployment: Optional[str] = None
    slot: Optional[int] = None
    generation: Optional[int] = None
    incarnation: Optional[int] = None
    role: str = "active"
    node: str
    ports: dict[str, Optional[int]]
    endpoint: Optional[str] = None
    resources: dict[str, Any]
    labels: dict[str, str] = Field(default_factory=dict)
    restarts: int
    exit_code: Optional[int] = None
    error: Optional[str] = None
    created_at: datetime
    started_at: Optional[datetime] = None
    startup: Optional[dict[str, Any]] = Field(
        None, description="an instance's startup: when it was planned, its image was ready, "
        "it was created, started, seen running and ready, and each phase's seconds")


class ContainerList(BaseModel):
    items: list[ContainerOut]
    next: Optional[str] = None


class ContainerPath(BaseModel):
    ref: str = Field(max_length=128, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class ContainerListQuery(Strict):
    state: Optional[Literal["creating", "created", "starting", "running", "paused", "stopping",
                            "stopped", "removing", "removed", "error"]] = None
    image: Optional[str] = Field(None, max_length=255)
    deployment: Optional[str] = Field(None, max_length=63)
    label: Optional[str] = Field(None, max_length=300, description="key or key=value")
    kind: Optional[Literal["standalone", "deployment"]] = None
    limit: int = Field(100, ge=1, le=1000)
    cursor: Optional[str] = Field(None, max_length=128)


class StopQuery(WaitQuery):
    timeout: Optional[int] = Field(None, ge=0, le=600)


class StopBody(Strict):
    timeout: int = Field(10, ge=0, le=600)


class KillBody(Strict):
    signal: str = Field("SIGKILL", pattern=validation.SIGNAL_RE.pattern)


class DeleteQuery(WaitQuery):
    force: Optional[bool] = None


class DeleteBody(Strict):
    force: bool = False


class LogsQuery(Strict):
    tail: Optional[int] = Field(None, ge=0, le=100000)
    timestamps: bool = False
    since: Optional[int] = Field(None, ge=0, description="unix seconds")
    wait: Optional[str] = None
    follow: bool = Field(False, description="stream as Server-Sent Events (Accept: "
                         "text/plain: raw lines) until the client leaves or it stops")
    previous: bool = Field(False, description="the slot's last dead container (role kept)")


class ExecBody(Strict):
    command: list[str] | str = Field(..., description="argv list or a shell string")

    @field_validator("command")
    @classmethod
    def _command(cls, value):
        if isinstance(value, list) and not value or isinstance(value, str) and not value.strip():
            raise ValueError("command must not be empty")
        return value


class ReadResult(BaseModel):
    """The result of a Docker read (logs, exec, stats), as the job recorded it."""
    model_config = ConfigDict(extra="allow")
    name: str


class UsageSummary(BaseModel):
    containers: int
    by_state: dict[str, int]
    by_kind: dict[str, int]
    reserved_cpus: float
    reserved_memory_bytes: int


class EventOut(BaseModel):
    id: int
    cursor: Optional[int] = Field(None, description="its place in commit order: pages and "
                                  "streams resume after it")
    at: datetime
    kind: str
    deployment: Optional[str] = None
    container: Optional[str] = None
    detail: dict[str, Any]
    who: Optional[str] = None


class EventList(BaseModel):
    items: list[EventOut]
    next: Optional[str] = None
    newest: Optional[str] = Field(None, description="the newest committed cursor, read before "
                                  "this page: a stream resumed after it misses nothing")


class EventQuery(Strict):
    deployment: Optional[str] = Field(None, max_length=63)
    container: Optional[str] = Field(None, max_length=128)
    kind: Optional[str] = Field(None, max_length=64)
    since: Optional[datetime] = None
    limit: int = Field(100, ge=1, le=1000)
    cursor: Optional[str] = Field(None, max_length=20, pattern=r"^\d+$")

#: every /api operation but the public ones takes a bearer token
BEARER = [{"bearer": []}]
