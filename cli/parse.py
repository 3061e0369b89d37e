"""Pure parsers for the CLI's options (no I/O): KEY=VALUE pairs, node label edits, port
specs, durations and --since times, manifests."""
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


def label_edits(values: tuple[str, ...] | list[str]) -> dict[str, str | None]:
    """kubectl's label arguments: ["disk=ssd", "zone-"] -> {"disk": "ssd", "zone": None}
    (KEY=VALUE sets, KEY- removes; the PATCH body of /api/nodes/<name>'s labels)."""
    out: dict[str, str | None] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if sep and key:
            out[key] = rest
        elif not sep and len(value) > 1 and value.endswith("-"):
            out[value[:-1]] = None
        else:
            raise ParseError(f"label {value!r} is neither KEY=VALUE (set) nor KEY- (remove)")
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
SECONDS = re.compile(r"\d+(?:\.\d+)?")  # plain seconds: a duration, or Unix time for --since


def go_seconds(text: str) -> float | None:
    """A Go duration (10m, 1h30m, 250ms) in seconds; None when ``text`` is not one."""
    if not GO_DURATION.fullmatch(text):
        return None
    return sum(float(number) * GO_UNITS[unit] for number, unit in GO_PART.findall(text))


def duration(value: str, what: str) -> float:
    """A length of time as the CLI's options take it: a Go duration (10m, 1h30m, 90s) or
    plain seconds (600); more than zero."""
    text = value.strip()
    seconds = float(text) if SECONDS.fullmatch(text) else go_seconds(text)
    if seconds is None:
        raise ParseError(f"{what} {value!r}: not a duration like 90s, 10m or 1h30m "
                         "(or plain seconds)")
    if seconds <= 0:
        raise ParseError(f"{what} {value!r}: must be more than zero")
    return seconds


def since(value: str, now: datetime) -> datetime:
    """docker's --since: a Go duration back from ``now`` (10m, 1h30m, 250ms), an RFC 3339 or
    ISO 8601 time (local time when it names no zone, as docker does), or Unix seconds."""
    text = value.strip()
    seconds = go_seconds(text)
    if seconds is not None:
        return now - timedelta(seconds=seconds)
    if SECONDS.fullmatch(text):
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
