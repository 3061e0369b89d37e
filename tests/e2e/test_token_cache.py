"""Each web process caches verified tokens briefly (issue 18, point 3); a revocation reaches
every process at once through Postgres NOTIFY, whoever revokes (the API of another process,
the management command)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import Api

pytestmark = pytest.mark.e2e
LONG_TTL = {"HARBORMASTER_TOKEN_CACHE_TTL": "300"}  # only a revocation can end an entry


def status(url: str, client: Api) -> int:
    return Api(url, client.token).get("/api/jobs", params={"limit": 1}).status_code


def test_a_revoked_token_is_refused_by_every_web_process_at_once(platform, api, make_client):
    control, by_api, by_command = (make_client("operator") for _ in range(3))
    with platform.extra_web("tokens-a", **LONG_TTL) as web_a, \
            platform.extra_web("tokens-b", **LONG_TTL) as web_b:
        webs = (web_a, web_b)
        for client in (control, by_api, by_command):
            for url in webs:
                assert status(url, client) == 200, (url, client.name)

        # the cache answers: a revocation written behind the platform's back (no NOTIFY)
        # is not seen by a process that verified the token before
        platform.sql("UPDATE tokens SET revoked_at = now() WHERE id = %s", (control.token_id,))
        assert status(web_b, control) == 200

        # revoked through web A's API: refused at once by A, by B and by the platform's
        # own web (two gunicorn processes: asked several times)
        r = Api(web_a, api.token).delete(f"/api/tokens/{by_api.token_id}")
        assert r.status_code == 200, r.text
        seen = [status(url, by_api) for url in (web_b, web_a, *[platform.url] * 4)]
        assert seen == [401] * 6, seen

        # revoked by the management command (a process with no listener of its own)
        subprocess.run([sys.executable, "-m", "ops.tokens", "revoke", by_command.name],
                       env=platform.env, check=True, capture_output=True)
        seen = [status(url, by_command) for url in (web_a, web_b, *[platform.url] * 4)]
        assert seen == [401] * 6, seen
