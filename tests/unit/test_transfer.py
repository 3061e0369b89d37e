"""core.transfer: bytes done / total over the layers of a pull or push, from the Engine API's
messages as docker-py decodes them (shapes recorded from Docker 20.10)."""
from core.transfer import Transfer


def feed_all(messages):
    t, moved = Transfer(), []
    for m in messages:
        if t.feed(m):
            moved.append((t.done, t.total))
    return t, moved


def test_a_pull_counts_every_layer_once_and_ends_complete():
    t, moved = feed_all([
        {"status": "Pulling from team/web", "id": "v1"},
        {"status": "Pulling fs layer", "id": "a"}, {"status": "Pulling fs layer", "id": "b"},
        {"status": "Downloading", "id": "a", "progressDetail": {"current": 100, "total": 1000}},
        {"status": "Downloading", "id": "b", "progressDetail": {"current": 50, "total": 500}},
        {"status": "Downloading", "id": "a", "progressDetail": {"current": 600, "total": 1000}},
        {"status": "Download complete", "id": "a"},
        {"status": "Extracting", "id": "a", "progressDetail": {"current": 1000, "total": 1000}},
        {"status": "Pull complete", "id": "a"},
        {"status": "Download complete", "id": "b"}, {"status": "Pull complete", "id": "b"},
        {"status": "Digest: sha256:" + "d" * 64},
        {"status": "Status: Downloaded newer image for 127.0.0.1:5000/team/web:v1"}])
    assert moved == [(100, 1000), (150, 1500), (650, 1500), (1050, 1500), (1500, 1500)]
    assert (t.done, t.total, t.error) == (1500, 1500, None)
    assert t.digest == "sha256:" + "d" * 64


def test_extracting_does_not_count_twice_and_current_never_passes_total():
    t, _ = feed_all([
        {"status": "Downloading", "id": "a", "progressDetail": {"current": 2000, "total": 1000}},
        {"status": "Extracting", "id": "a", "progressDetail": {"current": 10, "total": 1000}}])
    assert (t.done, t.total) == (1000, 1000)


def test_layers_already_there_add_nothing_and_move_nothing():
    t, moved = feed_all([{"status": "Already exists", "id": "a"},
                         {"status": "Status: Image is up to date for web:v1"}])
    assert moved == [] and (t.done, t.total) == (0, 0)


def test_an_error_line_is_kept_with_the_registry_reason():
    t, moved = feed_all([
        {"status": "Pulling from team/web", "id": "v9"},
        {"errorDetail": {"message": "manifest for 127.0.0.1:5000/team/web:v9 not found: "
                                    "manifest unknown: manifest unknown"},
         "error": "manifest for 127.0.0.1:5000/team/web:v9 not found"}])
    assert moved == [] and "manifest unknown" in t.error


def test_a_push_reports_its_layers_and_its_digest():
    t, moved = feed_all([
        {"status": "The push refers to repository [127.0.0.1:5000/team/web]"},
        {"status": "Preparing", "id": "a"},
        {"status": "Pushing", "id": "a", "progressDetail": {"current": 512, "total": 2048}},
        {"status": "Pushing", "id": "a", "progressDetail": {"current": 2048, "total": 2048}},
        {"status": "Pushed", "id": "a"},
        {"status": "v1: digest: sha256:abc size: 527"},
        {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": "sha256:" + "e" * 64,
                                       "Size": 527}}])
    assert moved == [(512, 2048), (2048, 2048)]
    assert t.digest == "sha256:" + "e" * 64 and t.error is None
