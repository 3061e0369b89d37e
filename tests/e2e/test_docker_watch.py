"""The Docker event watcher the capacity assertions rely on: it counts every event up to
the moment it stops (it waits for its own marker, not for a sleep), and a stream that dies
fails the test instead of leaving the counts silently short."""
from __future__ import annotations

import uuid

import docker
import pytest

from tests.support.dockerproxy import DockerProxy
from tests.support.dockerwatch import DockerWatch, WatchFailed

pytestmark = pytest.mark.e2e
IMAGE = "harbormaster/busybox-httpd"


def test_the_watch_counts_what_happened_right_before_it_stopped(platform):
    label = {"harbormaster.watch-test": uuid.uuid4().hex}
    selector = "harbormaster.watch-test=" + label["harbormaster.watch-test"]
    api = platform.docker.api
    with DockerWatch(selector) as watch:
        ids = [api.create_container(IMAGE, labels=label)["Id"] for _ in range(2)]
        api.start(ids[0])
        for cid in ids:
            api.remove_container(cid, force=True)
    # the last removal came just before the stop, with no pause: it is counted anyway
    assert (watch.max_existing, watch.max_running) == (2, 1)
    assert not watch.existing and not watch.running
    destroyed = [e["id"] for e in watch.events if e["Action"] == "destroy"]
    assert destroyed == ids


def test_the_watch_fails_when_its_stream_dies(platform, tmp_path):
    proxy = DockerProxy(str(tmp_path / "watch.sock"))
    proxy.start()
    try:
        watch = DockerWatch(f"harbormaster.watch-test={uuid.uuid4().hex}",
                            engines={"cut": docker.DockerClient(base_url=proxy.url)}).__enter__()
        proxy.cut()  # the engine "goes away" under the stream
        # stop() fails whichever it meets first: the dead stream, or its marker container
        # that the cut engine cannot make
        with pytest.raises(WatchFailed,
                           match="event stream died|a marker container could not be made"):
            watch.stop()
    finally:
        proxy.close()
