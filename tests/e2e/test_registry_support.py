"""Self-checks of the image tests' support: the real registry (tests.support.registry) asks
for credentials, an image with a unique random layer (tests.support.layers) is pushed with
them and pulled back through the throttling proxy (tests.support.throttle) by both engines,
slowed to its rate; a proxy thread that dies fails loudly; a registry stopped leaves no
process and no directory."""
from __future__ import annotations

import time

import docker
import pytest
import requests

from ops import images
from tests.support import layers
from tests.support.leftovers import pid_alive
from tests.support.registry import Registry
from tests.support.throttle import Throttle
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_the_registry_asks_for_credentials_and_takes_its_own(registry):
    bare = requests.get(f"{registry.url}/v2/", timeout=10)
    assert bare.status_code == 401
    assert bare.headers["WWW-Authenticate"].startswith("Basic realm=")
    wrong = requests.get(f"{registry.url}/v2/", auth=(registry.username, "wrong"), timeout=10)
    assert wrong.status_code == 401
    right = requests.get(f"{registry.url}/v2/", auth=(registry.username, registry.password),
                         timeout=10)
    assert right.status_code == 200
    entry = (registry.dir / "htpasswd").read_text()
    assert entry.startswith(f"{registry.username}:$2y$")  # bcrypt: the only kind it takes


def pull(api: docker.APIClient, ref: str, auth: dict | None) -> list[dict]:
    """Pull through the Engine API, its stream read to the end; the errors it reported
    (a refusal before the stream starts is the engine's answer, a 500)."""
    repository, tag = ref.rsplit(":", 1)
    try:
        return [m for m in api.pull(repository, tag=tag, stream=True, decode=True,
                                    auth_config=auth) if "error" in m]
    except docker.errors.APIError as exc:
        return [{"error": exc.explanation}]


def pull_timed(api: docker.APIClient, throttle: Throttle, ref: str, auth: dict,
               rate: int) -> tuple[float, int]:
    throttle.rate = rate
    before, started = throttle.forwarded, time.monotonic()
    assert pull(api, ref, auth) == []
    return time.monotonic() - started, throttle.forwarded - before


def test_an_image_pushed_is_pulled_through_the_throttle_by_both_engines(
        platform, registry, throttle, make_image):
    image = make_image(keep=True)
    local, n2 = platform.engines["local"], platform.engines["n2"]
    inspected = local.api.inspect_image(image.id)
    labels = inspected["Config"]["Labels"]
    assert labels[layers.LABEL] == image.ident
    assert images.TEST_IMAGE_LABEL not in labels  # image GC must be free to remove it
    assert len(inspected["RootFS"]["Layers"]) == 1 and inspected["Size"] >= 20 * layers.MIB
    assert registry.manifest_digest(image.repository, image.tag) == image.digest

    # without credentials the registry refuses, through the proxy as directly
    fresh = docker.APIClient(base_url="unix:///var/run/docker.sock", timeout=120)
    refused = pull(fresh, image.at(throttle.host), None)
    assert refused and ("unauthorized" in str(refused) or "no basic auth" in str(refused)), \
        refused

    assert layers.remove([local], [image.ident]) == []
    assert layers.remaining([local], [image.ident]) == []
    rate = 4 * layers.MIB
    seconds, moved = pull_timed(fresh, throttle, image.at(throttle.host),
                                registry.auth_config(), rate)
    assert moved >= image.random_bytes  # random bytes do not compress
    assert seconds >= 0.9 * moved / rate, (seconds, moved)  # it held the pull to its rate
    assert local.images.get(image.at(throttle.host)).id == image.id  # the same image back

    seconds, moved = pull_timed(n2.api, throttle, image.at(throttle.host),
                                registry.auth_config(), 16 * layers.MIB)
    assert moved >= image.random_bytes and seconds >= 0.9 * moved / (16 * layers.MIB)
    assert n2.images.get(image.at(throttle.host)).id == image.id
    throttle.check()

    assert layers.remove(platform.engines.values(), [image.ident]) == []
    assert layers.remaining(platform.engines.values(), [image.ident]) == []


def test_a_proxy_thread_that_dies_fails_loudly(registry):
    proxy = Throttle(registry.host, rate=1024)
    proxy.start()
    proxy.rate = "not a number"  # the next chunk's wait raises TypeError in a proxy thread
    with pytest.raises(requests.RequestException):
        requests.get(f"http://{proxy.host}/v2/", timeout=10)
    # kept by the dying thread just after it closed the connection
    wait_until(lambda: proxy.error is not None, 10, "the proxy's error kept")
    assert "TypeError" in proxy.error
    with pytest.raises(AssertionError, match="throttling proxy .* failed"):
        proxy.stop()


def test_a_stopped_registry_leaves_no_process_and_no_directory():
    reg = Registry()
    reg.start()
    pid, directory, url = reg.proc.pid, reg.dir, reg.url
    assert pid_alive(pid) and directory.is_dir()
    reg.stop()
    assert not pid_alive(pid)
    assert not directory.exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/v2/", timeout=5)


def test_an_image_made_and_pushed_is_only_in_the_registry(platform, registry, make_image):
    image = make_image(random_bytes=1024 * 1024)
    assert registry.manifest_digest(image.repository, image.tag) == image.digest
    assert layers.remaining(platform.engines.values(), [image.ident]) == []
    local_only = make_image(random_bytes=1024 * 1024, push=False)
    assert platform.docker.images.get(local_only.ref).id == local_only.id
    assert registry.tags(local_only.repository) == []
