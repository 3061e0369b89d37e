"""An image transfer's own connection to the engine, dropped before the engine answered, is
opened again (a pull or push asked again is the same one); one the engine answered, an error
included, is final; an engine that keeps dropping it is unreachable (Transient, retried by
the job). Against the real engine behind the test's socket proxy."""
from __future__ import annotations

import pytest

from tests.support.dockerproxy import DockerProxy
from workers import docker_ops
from workers.docker_ops import images as image_ops
from workers.docker_ops.engine import Permanent, Transient

pytestmark = pytest.mark.e2e


@pytest.fixture
def proxied(platform, tmp_path):  # the platform: its engine is up
    proxy = DockerProxy(str(tmp_path / "engine.sock"))
    proxy.start()
    before = docker_ops.engine.base_url(), docker_ops.engine.publish_host()
    docker_ops.engine.configure(proxy.url, "127.0.0.1")
    try:
        yield proxy
    finally:
        docker_ops.engine.configure(*before)
        proxy.close()


def test_connections_dropped_before_an_answer_are_opened_again(proxied):
    proxied.drop_next(image_ops.OPEN_ATTEMPTS - 1)
    api, version = image_ops._open("x", "pull", lambda api: api.version(), 10)
    api.close()
    assert version["ApiVersion"]


def test_an_engine_that_keeps_dropping_them_is_unreachable(proxied):
    proxied.drop_next(image_ops.OPEN_ATTEMPTS)
    with pytest.raises(Transient, match="docker engine unreachable"):
        image_ops._open("x", "pull", lambda api: api.version(), 10)


def test_what_the_engine_answered_is_final(proxied):
    with pytest.raises(Permanent, match="pull 127.0.0.1:9/hm-absent/x:v1: "):
        # a registry nothing listens on: the engine answers with its refusal at once
        image_ops.pull("127.0.0.1:9/hm-absent/x:v1", None, lambda message: None, 30, 30)
