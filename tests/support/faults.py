"""Faults the platform's processes show only in their logs: unexpected exits and errors.

A test platform keeps a ledger of what its tests declared they provoke (an ERROR line or a
traceback in one program's log, matched by a regex; an exit of one program that supervisord
then restarted). ``check`` reads the logs and supervisord's own log and returns every fault
the ledger does not cover; the session fails on any. A declaration covers what its program
logs from the moment it is made (byte offsets of the logs then) to the end of the session,
so a test cannot excuse what happened before it. ``check`` is a plain function: a test can
run it on a copy of the ledger taken before it declared, and see the fault reported.
"""
from __future__ import annotations

import copy
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

PROGRAMS = ("web", "worker", "executor", "scheduler", "agent")
TRACEBACK = "Traceback (most recent call last):"
# the level where each format writes it: "[ts] [..] [ERROR] msg" (dramatiq, gunicorn),
# "ts program ERROR msg" (ours), "ERROR:logger:msg" (logging's default)
ERROR = re.compile(r"^\[[^\]]*\](?: \[[^\]]*\])* \[(?:ERROR|CRITICAL)\]"
                   r"|^\d{4}-\d\d-\d\d [\d:,.]+ \w+ (?:ERROR|CRITICAL) "
                   r"|^(?:ERROR|CRITICAL):")
# supervisord: "exited: worker (terminated by SIGKILL; not expected)"; a requested stop is
# "stopped: ..." and is no fault
EXITED = re.compile(r"\b(exited|gave up): (\w+)")
CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


@dataclass
class Fault:
    program: str
    where: str          # file:line
    text: str           # the ERROR line and the traceback that follows it, or the exit line

    def __str__(self) -> str:
        return f"{self.program} ({self.where}):\n    " + self.text.replace("\n", "\n    ")


@dataclass
class Allowance:
    program: str
    pattern: re.Pattern
    offsets: dict[str, int]   # log file name -> its size when declared
    test: str

    def covers(self, fault: Fault, file: str, offset: int) -> bool:
        return (fault.program == self.program and offset >= self.offsets.get(file, 0)
                and bool(self.pattern.search(fault.text)))


@dataclass
class Ledger:
    """What the tests declared they provoke."""
    logs: Path
    allowances: list[Allowance] = field(default_factory=list)
    restarts: Counter = field(default_factory=Counter)
    restart_tests: dict[str, list[str]] = field(default_factory=dict)

    def expect_log(self, program: str, regex: str) -> None:
        """An ERROR line or traceback of ``program`` matching ``regex`` is expected from now."""
        assert program in PROGRAMS, program
        offsets = {p.name: p.stat().st_size for p in program_logs(self.logs, program)}
        self.allowances.append(Allowance(program, re.compile(regex), offsets, current_test()))

    def expect_restart(self, program: str, times: int = 1) -> None:
        """``program`` exits unexpectedly (and is restarted) ``times`` more times."""
        assert program in PROGRAMS, program
        self.restarts[program] += times
        self.restart_tests.setdefault(program, []).append(current_test())

    def copy(self) -> "Ledger":
        return copy.deepcopy(self)


def current_test() -> str:
    return os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]


def program_logs(logs: Path, program: str) -> list[Path]:
    """A program's log under supervisord, and those of extra processes the tests started
    (``<program>-<what>.log``)."""
    return sorted(p for p in logs.glob(f"{program}*.log")
                  if p.stem == program or p.stem.startswith(program + "-"))


def entries(path: Path, program: str):
    """(fault, byte offset) for each ERROR line (with the traceback that follows it) and
    each traceback not logged through an ERROR line."""
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines(keepends=True)
    offset, i = 0, 0
    while i < len(lines):
        line = lines[i]
        end = i + 1
        if line.startswith(TRACEBACK):
            end = traceback_end(lines, i)
        elif ERROR.search(line) and end < len(lines) and lines[end].startswith(TRACEBACK):
            end = traceback_end(lines, end)
        elif not ERROR.search(line):
            offset += len(line.encode())
            i += 1
            continue
        text = "".join(lines[i:end]).rstrip("\n")
        yield Fault(program, f"{path.name}:{i + 1}", text), offset
        offset += sum(len(ln.encode()) for ln in lines[i:end])
        i = end


def traceback_end(lines: list[str], i: int) -> int:
    """The index after the traceback starting at ``lines[i]``: its frames are indented, the
    exception's own line is not; a chained traceback after it belongs to it."""
    i += 1
    while i < len(lines):
        if lines[i].startswith((" ", "\t", TRACEBACK)) or not lines[i].strip():
            i += 1
            continue
        following = i + 1
        while following < len(lines) and not lines[following].strip():
            following += 1
        if following < len(lines) and lines[following].startswith(CHAINED):
            i = following + 1
            continue
        return i + 1
    return i


def exits(logs: Path) -> list[tuple[str, str]]:
    """(program, supervisord's line) for every exit it did not ask for."""
    path = logs / "supervisord.log"
    if not path.exists():
        return []
    found = []
    for line in path.read_text(errors="replace").splitlines():
        match = EXITED.search(line)
        if match and match.group(2) in PROGRAMS:
            found.append((match.group(2), line.strip()))
    return found


def check(ledger: Ledger) -> list[Fault]:
    """Every fault in the logs that the ledger does not cover."""
    faults = []
    for program in PROGRAMS:
        for path in program_logs(ledger.logs, program):
            for fault, offset in entries(path, program):
                if not any(a.covers(fault, path.name, offset) for a in ledger.allowances):
                    faults.append(fault)
    seen = Counter()
    for program, line in exits(ledger.logs):
        seen[program] += 1
        if seen[program] > ledger.restarts[program]:
            declared = ledger.restart_tests.get(program, [])
            faults.append(Fault(program, "supervisord.log",
                                f"{line}  [exit {seen[program]}; declared: "
                                f"{ledger.restarts[program]} by {declared}]"))
    return faults


def report(faults: list[Fault]) -> str:
    return (f"{len(faults)} undeclared fault(s) in the platform's processes:\n"
            + "\n".join(str(f) for f in faults))
