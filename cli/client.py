"""The CLI's HTTP client: where the API is, which token, errors as one clear line, and
following a job to its end with a progress bar.

The CLI is only a client of the HTTP API (it never opens the database or Docker), so it
works the same against a remote installation behind a TLS proxy.
"""
from __future__ import annotations

import time

import requests
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cli import settings

TERMINAL = ("succeeded", "failed", "cancelled")


class CliError(Exception):
    """A failure worth one line to the user (and a non-zero exit)."""


def default_url() -> str:
    return settings.from_env().url


def default_token() -> str | None:
    """The token from the CLI's settings (an environment variable or a token file)."""
    found = settings.from_env()
    if found.token or found.token_file is None:
        return found.token
    try:
        return found.token_file.read_text().strip() or None
    except OSError:
        if found.token_file_named:
            raise CliError(f"cannot read the token file {found.token_file}") from None
        return None


class Client:
    def __init__(self, url: str, token: str | None, timeout: float = 120.0):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.timeout = timeout
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, ok=(200, 201, 202), **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, self.url + path, **kwargs)
        except requests.ConnectionError:
            raise CliError(f"cannot reach Harbormaster at {self.url} (is `make up` running? "
                           "set HARBORMASTER_URL otherwise)") from None
        except requests.Timeout:
            raise CliError(f"{method} {path}: no answer within {self.timeout:.0f}s") from None
        if response.status_code not in ok:
            raise CliError(describe_error(response))
        return response

    def get(self, path: str, **kwargs) -> dict:
        return self.request("GET", path, **kwargs).json()

    def items(self, path: str, params: dict | None = None, limit: int = 1000) -> list[dict]:
        """Every item of a list route, following its cursor."""
        params = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        out: list[dict] = []
        cursor = None
        while len(out) < limit:
            page = self.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
            out.extend(page["items"])
            cursor = page.get("next")
            if not cursor:
                break
        return out[:limit]

    def follow(self, job: dict, console: Console | None = None, quiet: bool = False,
               timeout: float | None = None) -> dict:
        """Wait for a job to end (long polls of ?wait=, no busy loop), showing its progress;
        the ended job, or CliError when it failed or ``timeout`` seconds passed first.

        This is every wait of the CLI: a job ends only when what it asked for is done (a
        deployment's job when the deployment has converged) or cannot be by itself."""
        console = console or Console(stderr=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        if job["status"] not in TERMINAL:
            with Progress(TextColumn("{task.description}"), BarColumn(),
                          TextColumn("{task.fields[message]}"), TimeElapsedColumn(),
                          console=console, transient=True, disable=quiet) as progress:
                task = progress.add_task(f"{job['kind']}", total=None, message="queued")
                while job["status"] not in TERMINAL:
                    if deadline is not None and time.monotonic() > deadline:
                        raise CliError(f"job {job['id'][:8]} ({job['kind']}) is still "
                                       f"{job['status']} after {timeout:.0f}s; it goes on "
                                       f"(`harbormaster job {job['id'][:8]} --wait` follows it)")
                    job = self.get(f"/api/jobs/{job['id']}", params={"wait": 1},
                                   ok=(200, 202))
                    shown = job.get("progress") or {}
                    progress.update(task, total=shown.get("total") or None,
                                    completed=shown.get("done") or 0,
                                    message=shown.get("message") or job["status"])
        if job["status"] != "succeeded":
            raise CliError(f"job {job['id']} ({job['kind']}) {job['status']}: "
                           f"{job.get('error') or 'no error recorded'}")
        return job


def describe_error(response: requests.Response) -> str:
    """Our JSON error ({"error", "detail", "fields"}) as one line; anything else as it is."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text.strip()[:300]}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}: {body}"
    code = body.get("error") or f"HTTP {response.status_code}"
    detail = body.get("detail") or ""
    line = f"{code}: {detail}" if detail else code
    if response.status_code == 401:
        line += " (pass --token or set HARBORMASTER_TOKEN)"
    return line
