"""The import rules (docs/architecture.md), checked by import-linter: the contracts are kept,
and each one fails when a module breaks it (a scratch module planted in turn)."""
from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).parent / "lint-imports"

# (package that gets the scratch module, what it imports, the contract it breaks)
VIOLATIONS = [
    ("core", "import db", "core-is-pure"),
    ("core", "import requests", "core-is-pure"),
    ("config", "import core", "config-and-validation-are-leaves"),
    ("validation", "import db", "config-and-validation-are-leaves"),
    ("db", "import workers.messages", "db-is-plain"),
    ("db", "import flask", "db-is-plain"),
    ("workers", "import docker", "only-docker-ops-imports-docker"),
    ("web", "import docker", "only-docker-ops-imports-docker"),
    ("web", "import workers.converge", "web-and-scheduler-only-send"),
    ("scheduler", "import workers.docker_ops", "web-and-scheduler-only-send"),
    ("workers", "import web", "nothing-imports-the-top"),
    ("db", "import ops", "nothing-imports-the-top"),
    ("web", "import cli", "the-tops-are-apart"),
    ("ops", "import scheduler", "the-tops-are-apart"),
    ("cli", "import db", "cli-is-an-http-client"),
]


def lint(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache", *args], cwd=ROOT, capture_output=True,
                          text=True)


def test_import_contracts_are_kept():
    result = lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert ", 0 broken" in result.stdout


@pytest.mark.parametrize("package,statement,contract", VIOLATIONS,
                         ids=[f"{p}-{s.split()[1]}" for p, s, _ in VIOLATIONS])
def test_each_contract_fails_on_a_planted_violation(package, statement, contract):
    scratch = ROOT / package / "_planted_violation.py"
    scratch.write_text(f'"""A violation planted by test_architecture."""\n{statement}\n')
    try:
        result = lint("--contract", contract)
    finally:
        scratch.unlink()
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout and f"{package}._planted_violation" in result.stdout


def test_web_may_reach_no_worker_module_but_messages():
    """The contract lists worker modules by name: a new one must be listed too."""
    contracts = configparser.ConfigParser()
    contracts.read(ROOT / ".importlinter")
    listed = set(contracts["importlinter:contract:web-and-scheduler-only-send"]
                 ["forbidden_modules"].split())
    modules = {f"workers.{p.stem}" for p in (ROOT / "workers").glob("*.py")
               if p.stem not in ("__init__", "messages")}
    modules |= {f"workers.{p.name}" for p in (ROOT / "workers").iterdir()
                if (p / "__init__.py").exists()}
    assert listed == modules
