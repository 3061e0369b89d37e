"""Live streams, the pure parts: how the agent's log lines travel through Redis (key names,
one entry's fields), Docker's log lines read apart (timestamp, text), and Server-Sent Events
written out. No I/O: web (the relay) and the agent (the follower) share these.

A follow is one client's request to read one container's log: web writes its **lease**
(``lease_key``, renewed while the client stays) and pushes its id on the node's request
list; the node's agent reads Docker's log stream into the follow's Redis Stream
(``lines_key``) until the lease lapses or the container stops.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

PREFIX = "harbormaster:follow"
STDOUT, STDERR = "stdout", "stderr"
# what a lines entry's "k" field says
KIND_LINE_OUT, KIND_LINE_ERR, KIND_START, KIND_END = "o", "e", "start", "end"


def requests_key(node: str) -> str:
    """The list the node's agent pops new follow ids from."""
    return f"{PREFIX}:requests:{node}"


def lease_key(node: str, follow_id: str) -> str:
    """Exists (with the follow's parameters) while a client reads the follow."""
    return f"{PREFIX}:lease:{node}:{follow_id}"


def lease_pattern(node: str) -> str:
    """Every lease of one node (an agent that starts takes up the follows already asked)."""
    return f"{PREFIX}:lease:{node}:*"


def follow_id_of(lease: str) -> str:
    return lease.rsplit(":", 1)[1]


def lines_key(follow_id: str) -> str:
    """The follow's Redis Stream: a start entry, the lines, an end entry."""
    return f"{PREFIX}:lines:{follow_id}"


@dataclass(frozen=True)
class FollowAsk:
    """What a follow reads: the container (Docker id) and docker logs' options."""
    container: str
    docker_id: str
    tail: int | None = None       # None: every line kept
    since: float | None = None    # unix seconds
    instance: str | None = None   # the name shown in a deployment's merged stream
    follow: bool = True           # False: the lines there now, then the end

    def encode(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def decode(cls, text: str | bytes) -> "FollowAsk":
        return cls(**json.loads(text))


@dataclass(frozen=True)
class LogLine:
    stream: str          # stdout or stderr
    text: str            # without the newline
    time: str | None     # Docker's RFC 3339 timestamp, as it wrote it


def parse_line(raw: str, stream: str) -> LogLine:
    """One line of ``docker logs --timestamps``: "<RFC 3339 nano> <text>". A line without a
    readable timestamp keeps its whole text."""
    stamp, sep, text = raw.partition(" ")
    if sep and stamp_seconds(stamp) is not None:
        return LogLine(stream, text, stamp)
    return LogLine(stream, raw, None)


def stamp_seconds(stamp: str) -> float | None:
    """Unix seconds of Docker's timestamp (nanoseconds cut to microseconds), or None."""
    if len(stamp) < 20 or stamp[4:5] != "-" or "T" not in stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


class LineSplitter:
    """Frames of Docker's log stream -> whole lines, per stream. Docker sends one frame per
    log entry, but a long entry comes in pieces: a piece without its newline waits for the
    rest."""

    def __init__(self):
        self.pending: dict[str, str] = {STDOUT: "", STDERR: ""}

    def feed(self, stream: str, chunk: bytes) -> list[LogLine]:
        text = self.pending[stream] + chunk.decode("utf-8", errors="replace")
        *whole, rest = text.split("\n")
        self.pending[stream] = rest
        return [parse_line(line, stream) for line in whole]

    def flush(self) -> list[LogLine]:
        """What is left without a newline when the stream ends."""
        out = [parse_line(text, stream) for stream, text in self.pending.items() if text]
        self.pending = {STDOUT: "", STDERR: ""}
        return out


def line_fields(line: LogLine, number: int) -> dict:
    """A line as its Redis Stream entry (``n`` counts lines: a gap says MAXLEN trimmed some
    before the reader came)."""
    return {"k": KIND_LINE_ERR if line.stream == STDERR else KIND_LINE_OUT,
            "l": line.text, "t": line.time or "", "n": number}


def decode_fields(fields: dict) -> dict:
    """A Redis Stream entry (bytes) -> {"kind", ...} as the relay reads it."""
    text = {k.decode() if isinstance(k, bytes) else k:
            v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)
            for k, v in fields.items()}
    kind = text.get("k", "")
    if kind in (KIND_LINE_OUT, KIND_LINE_ERR):
        return {"kind": "line", "stream": STDERR if kind == KIND_LINE_ERR else STDOUT,
                "line": text.get("l", ""), "time": text.get("t") or None,
                "number": int(text.get("n") or 0)}
    if kind == KIND_END:
        code = text.get("c")
        return {"kind": "end", "reason": text.get("r", ""),
                "exit_code": int(code) if code not in (None, "") else None}
    return {"kind": kind}


def end_reason(state: dict | None) -> tuple[str, int | None]:
    """Why a follow ended once Docker closed the log stream, from the container's State
    (None: the container is gone)."""
    if state is None:
        return "the container was removed", None
    status = state.get("Status") or "unknown"
    if status == "exited":
        code = state.get("ExitCode")
        if state.get("OOMKilled"):
            return f"the container was OOM killed (exit code {code})", code
        return f"the container exited with code {code}", code
    if status == "running":
        return "docker closed the log stream", None
    return f"the container is {status}", None


def sse(data: str | dict, event: str | None = None, event_id: str | None = None) -> str:
    """One Server-Sent Event: a dict goes as JSON; a multi-line string as several data
    lines (the client joins them with newlines)."""
    body = json.dumps(data, separators=(",", ":")) if isinstance(data, dict) else data
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines += [f"data: {part}" for part in body.split("\n")]
    return "\n".join(lines) + "\n\n"


def sse_comment(text: str = "") -> str:
    """A comment line: clients ignore it; proxies and the server see the connection live."""
    return f": {text}\n\n"


def plain_line(line: str, time: str | None, timestamps: bool, instance: str | None) -> str:
    """A line as ``Accept: text/plain`` gets it: as docker logs prints it, an instance's
    prefix first in a deployment's merged stream."""
    text = f"{time} {line}" if timestamps and time else line
    return f"{instance} | {text}\n" if instance else f"{text}\n"
