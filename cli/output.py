"""How the CLI shows answers: tables for people, the API's JSON as it is with --json."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

from rich.console import Console
from rich.table import Table
from rich.text import Text

# piped output is for grep and awk: no wrapping or truncation at 80 columns
OUT = Console(width=None if sys.stdout.isatty() else 4096)


def emit_json(data) -> None:
    # plain print: rich would wrap long lines and colour the JSON, which breaks pipes
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def table(columns: list[str], rows: list[list], title: str | None = None) -> None:
    shown = Table(*columns, title=title, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        # a Text keeps its style (a down node in red); anything else is shown as a string
        shown.add_row(*["" if cell is None else cell if isinstance(cell, Text) else str(cell)
                        for cell in row])
    OUT.print(shown)


def listing(as_json: bool, items: list[dict], columns: list[str], row) -> None:
    """A list answer: its JSON items with --json, else a table of ``row(item)`` per item."""
    if as_json:
        emit_json(items)
    else:
        table(columns, [row(item) for item in items])


def ago(stamp: str | None) -> str:
    """An ISO-8601 time as "12s ago" / "3m ago" / "5h ago" / "2d ago"."""
    if not stamp:
        return ""
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return age((datetime.now(timezone.utc) - then).total_seconds())


def age(seconds: float | None) -> str:
    """Seconds back from now as "12s ago" / "3m ago" / "5h ago" / "2d ago"."""
    if seconds is None:
        return ""
    whole = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            return f"{whole // size}{unit} ago"
    return f"{whole}s ago"


def size(count: int | None) -> str:
    """Bytes in binary units as docker stats shows them: "64MiB", "3.8GiB"."""
    if count is None:
        return ""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value /= 1024
    else:
        unit = "TiB"
    # three significant digits, never in exponent form (1000KiB, not 1e+03KiB)
    return f"{value:.0f}{unit}" if value >= 100 else f"{value:.3g}{unit}"


def ports(mapping: dict | None) -> str:
    return ", ".join(f"127.0.0.1:{host}->{spec}" if host else spec
                     for spec, host in sorted((mapping or {}).items()))


def detail(data: dict | None) -> str:
    """An event's detail as key=value pairs on one line."""
    return " ".join(f"{k}={json.dumps(v) if isinstance(v, (dict, list)) else v}"
                    for k, v in (data or {}).items() if v is not None)


def stamp(iso: str | None) -> str:
    """"2026-11-22T07:01:20.708462+00:00" -> "2026-11-22 07:01:20" (UTC)."""
    return (iso or "")[:19].replace("T", " ")
