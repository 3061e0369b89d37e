"""Security: tokens, roles per route family, expiry and revocation, rate limits, audit,
container policy, and secrets that never leak."""
from __future__ import annotations

import json
import os
import stat
import time
import uuid

import pytest

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
HTTPD = "harbormaster/busybox-httpd"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_release_wrote_the_first_admin_token_0600(platform, api):
    path = platform.data / "admin-token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert api.get("/api/tokens").status_code == 200


def test_401_without_or_with_a_bad_token(anonymous, platform):
    from tests.conftest import Api
    for path in ("/api/jobs", "/api/containers", "/api/events", "/api/tokens", "/api/audit"):
        r = anonymous.get(path)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized", path
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.post("/api/containers", json={"image": HTTPD}).status_code == 401
    assert Api(platform.url, "hm_not-a-real-token").get("/api/jobs").status_code == 401
    # public routes
    assert anonymous.get("/health").status_code == 200
    assert anonymous.get("/api/openapi.json").status_code == 200


def test_roles_per_route_family(api, operator, viewer):
    name = unique("roles")
    # viewer: reads only
    for path in ("/api/jobs", "/api/containers", "/api/events", "/api/containers/usage/summary"):
        assert viewer.get(path).status_code == 200, path
    assert viewer.post("/api/containers", json={"image": HTTPD}).status_code == 403
    assert viewer.delete(f"/api/jobs/{uuid.uuid4()}").status_code == 403
    # operator: containers and jobs, not tokens or audit
    job = operator.job(operator.post("/api/containers", json={"image": HTTPD, "name": name}))
    assert job["status"] == "succeeded" and job["requested_by"] == operator.name
    assert viewer.post(f"/api/containers/{name}/stop").status_code == 403
    assert viewer.post(f"/api/containers/{name}/exec", json={"command": ["true"]}).status_code == 403
    for client in (operator, viewer):
        assert client.get("/api/tokens").status_code == 403
        assert client.post("/api/tokens", json={"name": unique("x"), "role": "admin"}).status_code == 403
        assert client.get("/api/audit").status_code == 403
    r = operator.get("/api/tokens")
    assert r.json()["error"] == "forbidden" and "admin" in r.json()["detail"]
    assert operator.job(operator.delete(f"/api/containers/{name}", params={"force": "true"}))[
        "status"] == "succeeded"


def test_token_secret_is_shown_once_and_stored_as_a_hash(api, platform):
    r = api.post("/api/tokens", json={"name": unique("once"), "role": "viewer"})
    assert r.status_code == 201
    secret, token_id = r.json()["token"], r.json()["id"]
    listed = api.get("/api/tokens").text
    assert secret not in listed and token_id in listed
    stored = platform.sql("SELECT secret_hash FROM tokens WHERE id = %s", (token_id,))[0][0]
    assert secret not in stored and len(stored) == 64


def test_expiry_and_revocation(make_client, api):
    short = make_client("viewer", expires_in="2s")
    assert short.get("/api/jobs").status_code == 200
    wait_until(lambda: short.get("/api/jobs").status_code == 401, 15, "token expired")
    revoked = make_client("operator")
    assert revoked.get("/api/jobs").status_code == 200
    assert api.delete(f"/api/tokens/{revoked.token_id}").status_code == 200
    r = revoked.get("/api/jobs")
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert api.delete(f"/api/tokens/{revoked.token_id}").status_code == 404


def test_rate_limit_answers_429_with_retry_after(make_client):
    limited = make_client("viewer", rate_limit="5/minute")
    codes = [limited.get("/api/jobs", params={"limit": 1}) for _ in range(8)]
    statuses = [r.status_code for r in codes]
    assert statuses[:5] == [200] * 5 and 429 in statuses[5:], statuses
    refused = next(r for r in codes if r.status_code == 429)
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"] == "rate_limited"


def test_audit_names_the_caller(api, operator):
    name = unique("audited")
    operator.job(operator.post("/api/containers", json={"image": HTTPD, "name": name}))
    operator.job(operator.post(f"/api/containers/{name}/stop", params={"timeout": 1}))
    rows = api.get("/api/audit", params={"who": operator.name}).json()["items"]
    actions = {(r["source"], r["action"], r["target"]) for r in rows}
    assert ("job", "create_container", f"containers/{name}") in actions
    assert ("job", "stop_container", f"containers/{name}") in actions
    assert ("event", "stop", name) in actions
    assert all(r["who"] == operator.name for r in rows)
    tokens = api.get("/api/audit", params={"who": "admin"}).json()["items"]
    assert any(r["action"] == "token_created" for r in tokens)


def test_widening_options_need_admin_and_the_server_configuration(api, operator):
    privileged = {"image": HTTPD, "security": {"privileged": True}}
    bind = {"image": HTTPD, "mounts": [{"type": "bind", "source": "/etc", "target": "/host"}]}
    for body, field in ((privileged, "security.privileged"), (bind, "mounts.0.type")):
        r = operator.post("/api/containers", json=body)
        assert r.status_code == 403 and field in r.json()["fields"], r.text
        r = api.post("/api/containers", json=body)  # admin, but the server forbids it
        assert r.status_code == 422 and field in r.json()["fields"], r.text
        assert "configuration" in r.json()["fields"][field]


def test_a_planted_secret_never_leaks(api, platform):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    name = unique("secret")
    job = api.job(api.post("/api/containers", json={
        "image": HTTPD, "name": name, "secret_env": {"API_KEY": secret},
        "env": {"PLAIN": "visible"}}))
    assert job["status"] == "succeeded", job
    # the container does get it
    out = api.post(f"/api/containers/{name}/exec", json={"command": ["sh", "-c", "echo ${#API_KEY}"]})
    assert out.json()["output"].strip() == str(len(secret))
    # every GET route of the API
    doc = api.get("/api/openapi.json").json()
    seen = 0
    for path, operations in doc["paths"].items():
        if "get" not in operations:
            continue
        concrete = (path.replace("{ref}", name).replace("{job_id}", job["id"])
                    .replace("{token_id}", str(uuid.uuid4())))
        r = api.get(concrete)
        seen += 1
        assert secret not in r.text, concrete
    assert seen >= 8
    for listing in ("/api/jobs?limit=500", "/api/events?limit=1000", "/api/audit?limit=1000",
                    f"/api/containers/{name}", f"/api/jobs/{job['id']}"):
        assert secret not in api.get(listing).text
    # the tables people and tools read
    for table in ("jobs", "events", "containers", "tokens"):
        dump = json.dumps(platform.sql(f"SELECT * FROM {table}"), default=str)
        assert secret not in dump, table
    # the messages in Redis
    client = platform.redis()
    for key in client.scan_iter("*"):
        kind = client.type(key).decode()
        values = {"string": lambda: [client.get(key)], "list": lambda: client.lrange(key, 0, -1),
                  "hash": lambda: list(client.hgetall(key).values()),
                  "set": lambda: list(client.smembers(key)),
                  "zset": lambda: client.zrange(key, 0, -1)}.get(kind, lambda: [])()
        assert all(secret.encode() not in (v or b"") for v in values), key
    # every process's log
    time.sleep(1)
    assert secret not in platform.logs()


def test_bodies_are_bounded(api):
    r = api.post("/api/containers", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"


def test_management_command_creates_and_revokes_tokens(platform):
    import subprocess
    import sys
    from tests.conftest import Api
    env = {**platform.env}
    name = unique("cli")
    created = subprocess.run([sys.executable, "-m", "ops.tokens", "create", name, "--role",
                              "viewer", "--expires", "1d"], env=env, capture_output=True,
                             text=True, check=True)
    secret = created.stdout.strip().splitlines()[-1]
    client = Api(platform.url, secret)
    assert client.get("/api/jobs").status_code == 200
    subprocess.run([sys.executable, "-m", "ops.tokens", "revoke", name], env=env, check=True,
                   capture_output=True)
    assert client.get("/api/jobs").status_code == 401
