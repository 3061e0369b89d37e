"""Image GC per node (issue 15, point 6) through the real processes, on a platform of its own
(its GC interval, minimum age and cache limit must not touch the session's images).

Images with a random layer of their own are pushed to the session's real registry, removed,
and pulled by the platform (so it records them as pulled); their recorded last uses are set
hours apart; a tiny cache limit then makes the GC remove the unused ones least recently used
first, and stop once under the limit, while an image a (stopped) container uses, one younger
than the minimum age and one carrying the platform's own label stay. After a restart of every
platform process, nothing more goes until the limit is lowered, and then only the next least
recently used one: the decisions come from Postgres, not from a process's memory.
"""
from __future__ import annotations

import json
import secrets
import uuid

import pytest

from core.imagegc import human_bytes
from ops import images as platform_images
from tests.conftest import Api
from tests.support import layers
from tests.support.platform import TestPlatform
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

MIN_AGE = 600  # seconds: longer than this whole test, so "young" stays young throughout
GC_PROFILE = {
    "HARBORMASTER_IMAGE_GC_INTERVAL": "2",
    "HARBORMASTER_IMAGE_MIN_AGE": str(MIN_AGE),
    # the machine's disk is shared with other runs: only the cache limit, which this test
    # sets, may decide here (the disk rule is unit-tested on recorded figures)
    "HARBORMASTER_IMAGE_GC_HIGH": "100",
}
# hours since each image's recorded last use; "young" is the one just pulled
HISTORY = {"own": 6, "stopped": 5, "a": 4, "b": 3, "c": 2}
OWN_LABEL = platform_images.TEST_IMAGE_LABEL


@pytest.fixture(scope="module")
def gc_platform():
    plat = TestPlatform(extra_env=GC_PROFILE, second_node=False)
    try:
        plat.start()
        yield plat
    finally:
        plat.teardown()


def make(client, registry, name: str, own: bool = False) -> layers.LayeredImage:
    """An image with a random layer of its own, pushed, then removed from the engine: only
    the platform's pull brings it back. ``own`` carries the platform's test-image label."""
    if not own:
        image = layers.build(client, registry.host, f"gc-{name}", random_bytes=64 * 1024)
    else:
        ident = secrets.token_hex(6)
        ref = f"{registry.host}/hm-test/gc-own-{ident}:v1"
        client.api.import_image_from_data(
            layers.rootfs_tar(64 * 1024, "v1"), repository=ref.rsplit(":", 1)[0], tag="v1",
            changes=[f"CMD {json.dumps(platform_images.HTTPD)}", f"LABEL {OWN_LABEL}=true",
                     f"LABEL {layers.LABEL}={ident}"])
        image = layers.LayeredImage(ref, ref.split("/", 1)[1].rsplit(":", 1)[0], "v1",
                                    client.images.get(ref).id, ident, 64 * 1024)
    registry.push(client, image.ref)
    client.api.remove_image(image.ref)
    return image


def on_engine(plat: TestPlatform, image_id: str) -> bool:
    return any(entry["Id"] == image_id for entry in plat.docker.api.images())


def removed_events(plat: TestPlatform) -> list[dict]:
    return [row[0] for row in plat.sql("SELECT detail FROM events WHERE kind = 'image_removed'"
                                       " ORDER BY id")]


def last_used(plat: TestPlatform, ref: str):
    return plat.sql("SELECT last_used_at FROM node_images WHERE node = 'local'"
                    " AND reference = %s", (ref,))[0][0]


def rounds_pass(plat: TestPlatform, running_ref: str, count: int = 2) -> None:
    """Wait for ``count`` whole GC rounds: each begins by moving the last use of the image a
    running container uses."""
    for n in range(count):
        before = plat.sql("SELECT now()")[0][0]
        wait_until(lambda: last_used(plat, running_ref) > before, 60, f"GC round {n + 1}")


def create(api: Api, image: str) -> str:
    name = f"gc-{uuid.uuid4().hex[:8]}"
    api.job(api.post("/api/containers", json={"image": image, "name": name}), wait=120)
    return name


def pull_all(api: Api, plat: TestPlatform, made: dict) -> None:
    for image in made.values():
        job = api.job(api.post("/api/images/pull", json={"image": image.ref, "node": "local"}),
                      wait=180)
        assert job["result"]["image_id"] == image.id
    recorded = dict(plat.sql("SELECT reference, image_id FROM node_images"
                             " WHERE node = 'local'"))
    assert recorded == {image.ref: image.id for image in made.values()}


def set_history(plat: TestPlatform, made: dict) -> None:
    for name, hours in HISTORY.items():
        plat.sql("UPDATE node_images SET last_used_at = now() - make_interval(hours => %s),"
                 " pulled_at = now() - make_interval(hours => %s)"
                 " WHERE node = 'local' AND reference = %s", (hours, hours + 1, made[name].ref))


def test_gc_removes_unused_pulled_images_lru_first_and_keeps_its_decisions_over_a_restart(
        gc_platform, registry):
    plat, client = gc_platform, gc_platform.docker
    api = Api(plat.url, plat.admin_token)
    made: dict[str, layers.LayeredImage] = {}
    try:
        for name in ("own", "stopped", "a", "b", "c", "running", "young"):
            made[name] = make(client, registry, name, own=name == "own")
        assert api.post("/api/registries", json=registry.credentials()).status_code in (200, 201)
        pull_all(api, plat, made)
        # in use: a stopped container (never touched as running: only "in use" protects it)
        # and a running one (its image's last use moves each round: the rounds' clock)
        stopped = create(api, made["stopped"].ref)
        api.job(api.post(f"/api/containers/{stopped}/stop", params={"wait": 60}))
        create(api, made["running"].ref)
        assert plat.sql("SELECT image_id FROM containers WHERE name = %s",
                        (stopped,)) == [(made["stopped"].id,)]
        set_history(plat, made)
        sizes = {name: client.images.get(image.ref).attrs["Size"] for name, image in made.items()}
        total = sum(sizes.values())

        # a limit that removing a, then b reaches: c, the next least recently used, stays
        limit = total - sizes["a"] - sizes["b"]
        assert api.put("/api/images/settings", json={"cache_size": limit}).status_code == 200
        wait_until(lambda: len(removed_events(plat)) >= 2, 60, "a and b removed")
        rounds_pass(plat, made["running"].ref)
        check_removed(plat, made, ["a", "b"], f"cache {human_bytes(total)} > {human_bytes(limit)}")

        plat.stop_processes()
        plat.start_processes()
        rounds_pass(plat, made["running"].ref)
        check_removed(plat, made, ["a", "b"], None)  # the same decisions: nothing more goes

        # one byte under what is left without c: c goes, and nothing after it may
        lower = total - sizes["a"] - sizes["b"] - sizes["c"] - 1
        assert api.put("/api/images/settings", json={"cache_size": lower}).status_code == 200
        wait_until(lambda: len(removed_events(plat)) >= 3, 60, "c removed")
        rounds_pass(plat, made["running"].ref)
        check_removed(plat, made, ["a", "b", "c"], None)
        assert removed_events(plat)[2]["reason"] == \
            f"cache {human_bytes(total - sizes['a'] - sizes['b'])} > {human_bytes(lower)}"
        young_idle = plat.sql("SELECT extract(epoch FROM now() - last_used_at)"
                              " FROM node_images WHERE reference = %s", (made["young"].ref,))
        assert float(young_idle[0][0]) < MIN_AGE, "the test outlived the minimum age"
        # the platform's own test images were never candidates (not pulled by it)
        for ref in platform_images.IMAGES:
            assert client.images.get(ref).labels.get(OWN_LABEL) == "true"
    finally:
        plat.remove_containers()
        errors = layers.remove([client], [image.ident for image in made.values()])
        assert not errors, f"test images not removed: {errors}"


def check_removed(plat: TestPlatform, made: dict, gone: list[str], reason: str | None) -> None:
    """Exactly ``gone`` were removed, in that order, each an event saying why; the rest stay
    on the engine and in the records."""
    events = removed_events(plat)
    assert [e["image_id"] for e in events] == [made[name].id for name in gone], events
    assert all(e["node"] == "local" and e["image"] == made[n].ref and e["size_bytes"] > 0
               for e, n in zip(events, gone))
    if reason is not None:
        assert [e["reason"] for e in events] == [reason] * len(gone)
    recorded = {row[0] for row in plat.sql("SELECT reference FROM node_images")}
    for name, image in made.items():
        assert on_engine(plat, image.id) == (name not in gone), name
        assert (image.ref in recorded) == (name not in gone), name
