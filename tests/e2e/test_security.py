"""Security: tokens, roles per route family, expiry and revocation, rate limits, audit,
container policy, and secrets that never leak."""
from __future__ import annotations

import http.client
import json
import os
import re
import stat
import uuid
from urllib.parse import urlsplit

import pytest

import config

from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
HTTPD = "harbormaster/busybox-httpd"
PARAMETER = re.compile(r"<(?:[^:>]+:)?(\w+)>")  # a Flask rule's path parameter


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


# who may call what: every route the application has, by the role of the caller
PUBLIC = {"/health", "/api/openapi.json", "/", "/static/<path:filename>", "/metrics"}
ADMIN_ONLY = ("/api/tokens", "/api/audit", "/api/registries")
ADMIN_CHANGES = ("/api/nodes",)
# routes of an operator resource that need admin (web.auth.ADMIN_ENDPOINTS)
ADMIN_ROUTES = {("POST", "/api/images/push"), ("DELETE", "/api/images/<path:ref>"),
                ("POST", "/api/images/prune"), ("PUT", "/api/images/settings")}
# bodies that are refused (422) or name nothing that exists (404): nothing changes
BODY = {"/containers/<path:image>/start": {"count": 0},
        "/api/images/prune": {"node": "no-such-node"}}


def routes(platform) -> list[tuple[str, str]]:
    """(method, rule) for every route of the web application."""
    from web import create_app
    app = create_app(config.from_env(platform.env))
    return sorted((m, r.rule) for r in app.url_map.iter_rules()
                  for m in r.methods - {"HEAD", "OPTIONS"})


def call(client, method: str, rule: str):
    missing = {"job_id": str(uuid.uuid4()), "token_id": str(uuid.uuid4()),
               "policy_id": str(uuid.uuid4()), "filename": "none.css"}
    path = PARAMETER.sub(lambda m: missing.get(m.group(1), f"no-such-{m.group(1)}"), rule)
    if method == "GET":   # only the status: a live stream's body lasts as long as we stay
        response = client.request(method, path, stream=True)
        response.close()
        return response
    return client.request(method, path, json=BODY.get(rule, {}))


def test_every_route_by_role(api, operator, viewer, anonymous, platform):
    """viewer reads and cannot change anything (403); operator changes everything but
    tokens and audit (403); admin may do all; no token: 401 outside the public routes.
    The probes name nothing that exists or carry refused bodies, so nothing changes."""
    wrong = []
    for method, rule in routes(platform):
        # nodes: viewers read them, only admins change them
        admin_only = rule.startswith(ADMIN_ONLY) or (rule.startswith(ADMIN_CHANGES)
                                                     and method != "GET") \
            or (method, rule) in ADMIN_ROUTES
        expected = {
            "anonymous": "ok" if rule in PUBLIC and method == "GET" else 401,
            "viewer": "ok" if method == "GET" and not admin_only else 403,
            "operator": 403 if admin_only else "ok",
            "admin": "ok",
        }
        for who, client in (("anonymous", anonymous), ("viewer", viewer),
                            ("operator", operator), ("admin", api)):
            status = call(client, method, rule).status_code
            allowed = status not in (401, 403) and status < 500
            if (expected[who] == "ok" and not allowed) or \
                    (expected[who] != "ok" and status != expected[who]):
                wrong.append(f"{who} {method} {rule}: {status}, expected {expected[who]}")
    assert not wrong, "\n".join(wrong)


def test_roles_do_real_work(api, operator, viewer):
    name = unique("roles")
    job = operator.job(operator.post("/api/containers", json={"image": HTTPD, "name": name}))
    assert job["requested_by"] == operator.name
    assert viewer.post(f"/api/containers/{name}/stop").status_code == 403
    assert viewer.post(f"/api/containers/{name}/exec", json={"command": ["true"]}).status_code \
        == 403
    r = operator.get("/api/tokens")
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden" and "admin" in r.json()["detail"]
    made = api.post("/api/tokens", json={"name": unique("made"), "role": "viewer"})
    assert made.status_code == 201
    assert api.delete(f"/api/tokens/{made.json()['id']}").status_code == 200
    assert api.get("/api/audit", params={"who": operator.name}).status_code == 200
    operator.job(operator.delete(f"/api/containers/{name}", params={"force": "true"}))


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


def get_from(address: str, url: str, token: str) -> tuple[int, dict]:
    """GET from a given loopback source address (requests cannot choose it)."""
    parsed = urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30,
                                      source_address=(address, 0))
    try:
        conn.request("GET", parsed.path + "?limit=1", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        response.read()
        return response.status, dict(response.getheaders())
    finally:
        conn.close()


def test_per_address_rate_limit_counts_every_token_of_an_address(platform, make_client):
    """A web process whose per-address limit is 5 a minute: five requests from one address
    pass whichever tokens they carry, the sixth is 429 with Retry-After even with a fresh
    token; another address still passes. (127.0.0.3 and .2: addresses nothing else used,
    not even the readiness probe of the process.)"""
    tokens = [make_client("viewer").token for _ in range(3)]
    with platform.extra_web("per-address", HARBORMASTER_RATE_LIMIT_PER_ADDRESS="5/minute") as url:
        jobs = url + "/api/jobs"
        statuses = [get_from("127.0.0.3", jobs, tokens[i % 2])[0] for i in range(5)]
        assert statuses == [200] * 5, statuses
        status, headers = get_from("127.0.0.3", jobs, tokens[2])
        assert status == 429 and int(headers["Retry-After"]) > 0, (status, headers)
        assert get_from("127.0.0.2", jobs, tokens[2])[0] == 200


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


# GET routes whose answer is not a 200 with the objects the sweep made
STATUS = {"/api/static/<path:filename>": 404}  # flask-openapi3 ships no static files
LIVE = {"/api/events/stream"}   # a stream without end: its first chunk is swept


def get_rules(platform) -> list[str]:
    """Every GET route of the web application (the API, the seed's, the pages)."""
    return sorted({rule for method, rule in routes(platform) if method == "GET"})


def concrete(rule: str, values: dict) -> str:
    """The rule with every path parameter replaced by a real object's key."""
    special = {("/containers/instances/<ref>/health", "ref"): values["docker_id"],
               ("/api/services/<name>/endpoints", "name"): values["service"],
               ("/api/nodes/<name>", "name"): "local",
               ("/api/images/<path:ref>", "ref"): values["image"],
               ("/static/<path:filename>", "filename"): "dashboard.js"}
    return PARAMETER.sub(lambda m: str(special.get((rule, m.group(1)), values[m.group(1)])),
                         rule)


def redis_values(client) -> list[bytes]:
    """Every value of every key in Redis (the broker's queues and messages, the limiter's
    counters)."""
    out = []
    for key in client.scan_iter("*"):
        kind = client.type(key).decode()
        out += {"string": lambda: [client.get(key)], "list": lambda: client.lrange(key, 0, -1),
                "hash": lambda: list(client.hgetall(key).values()),
                "set": lambda: list(client.smembers(key)),
                "zset": lambda: client.zrange(key, 0, -1)}.get(kind, lambda: [])()
    return [v or b"" for v in out]


def plant(api, platform, secret: str, name: str, deployment: str) -> tuple[dict, dict]:
    """A container and a deployment carrying the secret, their job messages read in Redis
    while no worker consumes them."""
    for program in ("worker", "executor"):  # hold the messages in Redis
        platform.stop_program(program)
    try:
        created = api.post("/api/containers", json={
            "image": HTTPD, "name": name, "secret_env": {"API_KEY": secret},
            "env": {"PLAIN": "visible"}, "node": "local"})
        deployed = api.post("/api/deployments", json={
            "name": deployment, "image": HTTPD, "replicas": 1, "update": {"monitor": 0.5},
            "secret_env": {"DEPLOY_KEY": secret}})
        assert (created.status_code, deployed.status_code) == (202, 202), \
            (created.text, deployed.text)
        values = redis_values(platform.redis())
        for job in (created.json(), deployed.json()):
            assert any(job["id"].encode() in v for v in values), f"message of {job['id']}"
        assert not [v for v in values if secret.encode() in v]
    finally:
        for program in ("worker", "executor"):
            platform.start_program(program)
    return api.job(created), api.job(deployed)


def test_a_planted_secret_never_leaks(api, platform):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    name, deployment, service = unique("secret"), unique("secretdep"), unique("secretsvc")
    job, _ = plant(api, platform, secret, name, deployment)
    instance = f"{deployment}-0.1"
    # the containers do get it
    for ref, key in ((name, "API_KEY"), (instance, "DEPLOY_KEY")):
        out = api.post(f"/api/containers/{ref}/exec",
                       json={"command": ["sh", "-c", f"echo ${{#{key}}}"]})
        assert out.json()["output"].strip() == str(len(secret)), (ref, out.text)
    endpoint = api.post("/api/services/register", json={
        "name": service, "address": "127.0.0.1", "port": 9}).json()
    policy = api.post("/api/scaling/policies", json={
        "deployment": deployment, "enabled": False, "min_replicas": 1, "max_replicas": 1,
        "metrics": [{"type": "cpu", "target": 50}]}).json()
    values = {"job_id": job["id"], "name": deployment, "service": service,
              "docker_id": job["result"]["container_id"], "endpoint_id": endpoint["id"],
              "policy_id": policy["id"], "image": HTTPD, "filename": "none.css"}
    # every GET route, every path parameter, for the standalone container and the instance
    rules = get_rules(platform)
    for ref in (name, instance):
        for rule in rules:
            path = concrete(rule, {**values, "ref": ref})
            r = api.get(path, stream=True)
            text = next(r.iter_content(65536), b"").decode() if rule in LIVE else r.text
            r.close()
            assert r.status_code == STATUS.get(rule, 200), (path, r.status_code, text[:300])
            assert secret not in text and secret not in str(r.headers), path
    print(f"[secret] {len(rules)} GET routes swept for 2 containers")
    for listing in ("/api/jobs?limit=500", "/api/events?limit=1000", "/api/audit?limit=1000"):
        assert secret not in api.get(listing).text
    # every table holds it only in secrets, where the worker reads it
    tables = [t for (t,) in platform.sql("SELECT table_name FROM information_schema.tables"
                                         " WHERE table_schema = 'public'")]
    assert {"jobs", "events", "containers", "deployments", "deployment_revisions"} <= set(tables)
    for table in tables:
        dump = json.dumps(platform.sql(f'SELECT * FROM "{table}"'), default=str)
        assert (secret in dump) == (table == "secrets"), table
    assert not [v for v in redis_values(platform.redis()) if secret.encode() in v]
    # every process's log, and Postgres's, Redis's and dockerd's
    logs = platform.service_logs()
    assert logs["postgres"].exists() and logs["redis"].exists(), logs
    print(f"[secret] service logs read: {sorted(logs)}")
    assert secret not in platform.logs()
    api.job(api.delete(f"/api/deployments/{deployment}"))
    api.job(api.delete(f"/api/containers/{name}", params={"force": "true"}))


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
