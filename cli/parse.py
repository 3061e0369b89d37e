"""Pure parsers for the CLI's options (no I/O): KEY=VALUE pairs, port specs, --since times,
manifests."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import yaml


class ParseError(ValueError):
    """An option the user wrote that cannot be understood; the message says why."""


def pairs(values: tuple[str, ...] | list[str], what: str) -> dict[str, str]:
    """["A=1", "B=x=y"] -> {"A": "1", "B": "x=y"}; a repeated key keeps the last value."""
    out: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise ParseError(f"{what} {value!r} is not KEY=VALUE")
        out[key] = rest
    return out


def ports(values: tuple[str, ...] | list[str]) -> dict[str, int | None]:
    """Docker's -p forms -> our ports map: "80" -> {"80/tcp": None} (any free host port),
    "8080:80" -> {"80/tcp": 8080}, "53/udp" -> {"53/udp": None}. The host address is the
    server's choice (127.0.0.1 by default), so "IP:HOST:CONTAINER" is refused."""
    out: dict[str, int | None] = {}
    for value in values:
        parts = value.split(":")
        if len(parts) > 2:
            raise ParseError(f"port {value!r}: the host address is set by the server; "
                             "use HOST_PORT:CONTAINER_PORT or CONTAINER_PORT")
        container = parts[-1]
        number, _, proto = container.partition("/")
        proto = proto or "tcp"
        host = parts[0] if len(parts) == 2 else None
        if not number.isdigit() or not 0 < int(number) < 65536 \
                or proto not in ("tcp", "udp", "sctp"):
            raise ParseError(f"port {value!r}: not a port like 80, 80/udp or 8080:80 "
                             "(1-65535; tcp, udp or sctp)")
        if host is not None and (not host.isdigit() or not 0 < int(host) < 65536):
            raise ParseError(f"port {value!r}: host port {host!r} is not a port number")
        out[f"{int(number)}/{proto}"] = int(host) if host is not None else None
    return out


# Go's time.ParseDuration, which docker's --since takes: a sequence of numbers with units
GO_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")
GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
            "h": 3600.0}
UNIX_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def since(value: str, now: datetime) -> datetime:
    """docker's --since: a Go duration back from ``now`` (10m, 1h30m, 250ms), an RFC 3339 or
    ISO 8601 time (local time when it names no zone, as docker does), or Unix seconds."""
    text = value.strip()
    if GO_DURATION.fullmatch(text):
        seconds = sum(float(number) * GO_UNITS[unit] for number, unit in GO_PART.findall(text))
        return now - timedelta(seconds=seconds)
    if UNIX_SECONDS.fullmatch(text):
        return datetime.fromtimestamp(float(text), timezone.utc)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ParseError(f"since {value!r}: not a duration like 10m or 1h30m, a time like "
                         "2026-01-02T15:04:05Z, or Unix seconds") from None
    return moment if moment.tzinfo else moment.astimezone()


def document(text: str, source: str, key: str = "name") -> dict:
    """A manifest (YAML or JSON): one mapping, naming its object under ``key``."""
    try:
        data = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ParseError(f"{source}: not valid {'JSON' if source.endswith('.json') else 'YAML'}:"
                         f" {exc}") from None
    if not isinstance(data, dict):
        raise ParseError(f"{source}: a manifest is one mapping ({key}, ...)")
    if not isinstance(data.get(key), str) or not data[key]:
        raise ParseError(f"{source}: the manifest needs a {key}")
    return data


def manifest(text: str, source: str) -> dict:
    """A deployment manifest (the body of POST /api/deployments)."""
    return document(text, source, "name")
