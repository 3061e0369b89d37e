"""OpenAPI: every /api rule is documented with its schemas, and generated requests never
find a 5xx (schemathesis, against a platform of its own whose worker is stopped, so nothing
reaches Docker and nothing it creates is seen by other tests)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import config

from tests.support.platform import TestPlatform

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_every_api_rule_is_in_the_openapi_document(api, platform):
    from web import create_app
    app = create_app(config.from_env(platform.env))
    doc = api.get("/api/openapi.json").json()
    documented = doc["paths"]
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.endpoint.startswith("openapi."):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = documented.get(path, {}).get(method.lower())
            if operation is None:
                missing.append(f"{method} {path}")
                continue
            assert operation.get("responses"), f"{method} {path} has no responses"
            success = [c for c in operation["responses"] if c.startswith("2")]
            assert success, f"{method} {path} documents no success response"
            for code in success:   # JSON, or a stream (Server-Sent Events)
                content = operation["responses"][code].get("content", {})
                assert "application/json" in content or "text/event-stream" in content, \
                    f"{method} {path} {code} has no schema"
            if method in ("POST", "PUT", "PATCH") and "requestBody" in operation:
                assert operation["requestBody"]["content"]["application/json"]["schema"]
    assert not missing, f"undocumented: {missing}"
    assert "null" not in api.get("/api/openapi.json").text.split('"securitySchemes"')[-1][:20]


def schemathesis(url: str, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    binary = Path(sys.executable).parent / "schemathesis"
    return subprocess.run(
        [str(binary), "run", f"{url}/api/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", "20", "--seed", "1", "--request-timeout", "20",
         *extra],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)


# two schemathesis runs of up to 600 s each on a platform of its own: past the suite's 300 s
# per-test limit on a loaded 2-core machine (it took longer than 300 s once in CI)
@pytest.mark.timeout(1500)
def test_schemathesis_finds_no_server_error():
    # A platform of its own: the generated requests create deployments, containers,
    # policies and registrations (valid ones, since the schema documents the formats), which
    # must not leak into the other tests. Its worker is stopped: nothing reaches Docker.
    platform = TestPlatform(second_node=False)
    try:
        platform.start()
        for program in ("worker", "executor"):
            platform.stop_program(program)
        # revoking tokens is left out: the stateful phase would revoke the admin token it uses;
        # and live streams, whose answers last as long as the client stays
        authenticated = schemathesis(platform.url, "-H",
                                     f"Authorization: Bearer {platform.admin_token}",
                                     "--exclude-path-regex",
                                     "^/api/tokens/|^/api/events/stream$|"
                                     "^/api/deployments/[^/]+/logs$")
        print(authenticated.stdout[-3000:])
        assert authenticated.returncode == 0, \
            authenticated.stdout[-6000:] + authenticated.stderr[-2000:]
        anonymous = schemathesis(platform.url, "--checks", "only_401_outside_public",
                                 env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.st_hooks",
                                      "PYTHONPATH": str(ROOT)})
        print(anonymous.stdout[-2000:])
        assert anonymous.returncode == 0, anonymous.stdout[-6000:] + anonymous.stderr[-2000:]
    finally:
        platform.teardown()
