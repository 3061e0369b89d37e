"""Pure parsers for the formats users type: sizes, CPU counts, durations, image refs, ports."""
from __future__ import annotations

import re

SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}
DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
DURATION_UNITS = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0, "d": 86400.0}

# the distribution/reference grammar: [registry[:port]/]path[:tag][@digest]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
IMAGE_RE = re.compile(rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?"
                      r"(?:@sha256:[a-f0-9]{64})?$")
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PORT_RE = re.compile(r"^(\d{1,5})(?:/(tcp|udp|sctp))?$")
SIGNAL_RE = re.compile(r"^(?:SIG)?[A-Z0-9]{2,10}$|^\d{1,2}$")


def parse_size(value) -> int:
    """'256m' -> 268435456; ints are bytes. Raises ValueError with the message users see."""
    if isinstance(value, bool):
        raise ValueError("not a size like 256m or 1g")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, str):
        match = SIZE_RE.match(value)
        if match:
            return int(float(match.group(1)) * SIZE_UNITS[match.group(2).lower()])
    raise ValueError(f"{value!r} is not a size like 256m or 1g")


def parse_cpus(value) -> float:
    """'0.5' or 0.5 -> 0.5 cores (a fraction of one core, as the seed's cpu_limit)."""
    if isinstance(value, bool):
        raise ValueError("not a number of CPUs like 0.5")
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number of CPUs like 0.5") from None
    if not 0.01 <= cpus <= 1024:
        raise ValueError("cpus must be between 0.01 and 1024")
    return cpus


def parse_duration(value) -> float:
    """Seconds from 30, '30', '30s', '5m', '250ms'."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = DURATION_RE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration like 30 or 30s or 5m")
    return float(match.group(1)) * DURATION_UNITS[match.group(2)]


def check_image(value: str) -> str:
    if not isinstance(value, str) or len(value) > 255 or not IMAGE_RE.match(value):
        raise ValueError(f"{value!r} is not an image reference like nginx:alpine or "
                         "registry.local:5000/team/app:v2")
    return value


def split_image(ref: str) -> tuple[str | None, str, str | None, str | None]:
    """A checked reference -> (registry host[:port] or None, repository, tag, digest), by
    Docker's rule: the first component names a registry when it has a dot or a port or is
    localhost. ``127.0.0.1:5000/team/web:v2`` -> ("127.0.0.1:5000", "127.0.0.1:5000/team/web",
    "v2", None); the repository keeps the registry (what the Engine API wants)."""
    check_image(ref)
    name, _, digest = ref.partition("@")
    first, slash, _ = name.partition("/")
    registry = first if slash and ("." in first or ":" in first or first == "localhost") \
        else None
    last = name.rsplit("/", 1)[-1]
    repository, tag = (name.rsplit(":", 1) if ":" in last else (name, None))
    return registry, repository, tag, digest or None


def check_name(value: str) -> str:
    if not NAME_RE.match(value or ""):
        raise ValueError("a name is 1-63 letters, digits, '_', '.' or '-', starting with a "
                         "letter or digit")
    return value


def normalise_port(spec: str) -> str:
    match = PORT_RE.match(str(spec))
    if not match or not 1 <= int(match.group(1)) <= 65535:
        raise ValueError(f"{spec!r} is not a container port like 80/tcp (1-65535)")
    return f"{int(match.group(1))}/{match.group(2) or 'tcp'}"


def check_env(values: dict) -> dict:
    for key in values:
        if not ENV_KEY_RE.match(key):
            raise ValueError(f"{key!r} is not an environment variable name")
    return values


def normalise_ports(values: dict) -> dict:
    """{"80": null} -> {"80/tcp": null}; host ports 1-65535 or null (any free port)."""
    out = {}
    for spec, host_port in values.items():
        if host_port is not None and not 1 <= host_port <= 65535:
            raise ValueError(f"host port {host_port} for {spec} is outside 1-65535")
        out[normalise_port(spec)] = host_port
    return out


def check_labels(values: dict) -> dict:
    for key in values:
        if key.startswith("harbormaster.") or key == "managed-by":
            raise ValueError(f"label {key!r} is reserved")
        if not key or len(key) > 128:
            raise ValueError("label keys are 1-128 characters")
    return values


def bounds_problem(replicas: int, low: int | None, high: int | None, cap: int) -> str | None:
    """Why ``replicas`` is outside a deployment's bounds, or None. An unset bound (None)
    means 0 below and the server's cap above."""
    lo = 0 if low is None else low
    hi = cap if high is None else high
    if lo > hi:
        return f"min_replicas {lo} is above max_replicas {hi}"
    if not lo <= replicas <= hi:
        return f"replicas {replicas} is outside min/max {lo}..{hi}"
    return None


def pool_problem(size: int, high: int | None, cap: int, mode: str | None) -> str | None:
    """Why a warm pool of ``size`` cannot be, or None: at most the replicas' upper bound
    (unset: the server's cap), and none for a global deployment (one instance per node)."""
    hi = cap if high is None else high
    if size and mode == "global":
        return "a global deployment has no warm pool"
    if not 0 <= size <= hi:
        return f"warm_pool {size} is outside 0..{hi} (max_replicas)"
    return None


def check_replica_count(value: int, cap: int) -> int:
    """A replica count or bound: 0 .. the server's cap (HARBORMASTER_MAX_REPLICAS)."""
    if value < 0:
        raise ValueError("must be 0 or more")
    if value > cap:
        raise ValueError(f"{value} is above the server's cap of {cap} replicas "
                         "(HARBORMASTER_MAX_REPLICAS)")
    return value
