"""core.imagegc: the kubelet's 85 %/80 % rule on recorded disk figures, the cache limit, the
maximum age, what is never removed, the order and where it stops; then properties over
random nodes (what goes is allowed to go, least recently used first, no more than needed,
everything allowed when the target cannot be met)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.imagegc import (Disk, Policy, Present, Pulled, disk_to_free, human_bytes,
                          human_seconds, normal, removals)
from ops import images as platform_images

NOW = 1_000_000.0
MB, GB = 1000 ** 2, 1000 ** 3
HOUR = 3600.0
KUBELET = Policy(high_percent=85, low_percent=80, min_age=120)
# statvfs of /var/lib/docker on this machine, recorded while writing these tests
# (f_frsize 4096, f_blocks 66053021, f_bavail 20469575)
THIS_MACHINE = Disk(used_bytes=(66053021 - 20469575) * 4096, capacity_bytes=66053021 * 4096)


def image(name: str, size: int, idle: float, *, tags=None, labels=None, refs=None,
          pulled_ago: float | None = None):
    """An image on the engine and our records of it (one per reference)."""
    refs = refs or [f"{name}:v1"]
    present = Present(f"sha256:{name}", size, tuple(refs if tags is None else tags),
                      labels or {})
    pulled_at = NOW - (pulled_ago if pulled_ago is not None else idle)
    records = [Pulled(ref, present.image_id, size, NOW - idle, pulled_at) for ref in refs]
    return present, records


def node(*images_):
    present = [p for p, _ in images_]
    pulled = [r for _, records in images_ for r in records]
    return pulled, present


def plan(images_, disk=None, policy=KUBELET, in_use=()):
    pulled, present = node(*images_)
    return removals(pulled, present, {f"sha256:{n}" for n in in_use}, disk, policy, NOW)


def disk(percent_used: float, capacity: int = 100 * GB) -> Disk:
    return Disk(int(capacity * percent_used / 100), capacity)


def ids(found) -> list[str]:
    return [r.image_id.removeprefix("sha256:") for r in found]


# --- the kubelet's rule ---------------------------------------------------------------------

def test_this_machine_is_under_the_high_threshold():
    assert disk_to_free(THIS_MACHINE, KUBELET) == (0, "")
    assert plan([image("a", GB, idle=HOUR)], THIS_MACHINE) == []


def test_at_85_percent_it_starts_and_frees_down_to_80():
    need, reason = disk_to_free(disk(85), KUBELET)
    assert need == 5 * GB and reason == "disk 85% >= 85%: until under 80%"
    assert disk_to_free(disk(84), KUBELET) == (0, "")


def test_whole_percent_as_the_kubelet_counts():
    # 100 - floor(available x 100 / capacity): 15.5 % available is 85 % used
    assert disk_to_free(Disk(int(84.5 * GB), 100 * GB), KUBELET)[0] == int(4.5 * GB)
    assert disk_to_free(Disk(84 * GB, 100 * GB), KUBELET) == (0, "")


def test_91_percent_frees_9_gb_least_recently_used_first_and_stops():
    found = plan([image("a", 5 * GB, idle=5 * HOUR), image("b", 4 * GB, idle=4 * HOUR),
                  image("c", 3 * GB, idle=3 * HOUR), image("d", 3 * GB, idle=2 * HOUR)],
                 disk(91))
    # 11 GB needed to reach 80 %: a + b = 9, a + b + c = 12 -> d stays
    assert ids(found) == ["a", "b", "c"]
    assert {r.reason for r in found} == {"disk 91% >= 85%: until under 80%"}
    assert sum(r.size_bytes for r in found) >= disk_to_free(disk(91), KUBELET)[0]


def test_full_disk_with_too_little_to_free_removes_all_it_may():
    found = plan([image("a", GB, idle=HOUR), image("b", GB, idle=HOUR / 2),
                  image("young", GB, idle=10), image("used", GB, idle=HOUR)],
                 disk(100), in_use=["used"])
    assert ids(found) == ["a", "b"]


def test_unknown_disk_figures_never_remove_for_disk():
    assert plan([image("a", GB, idle=HOUR)], None) == []
    assert plan([image("a", GB, idle=HOUR)], Disk(0, 0)) == []


def test_other_thresholds():
    policy = Policy(high_percent=50, low_percent=40, min_age=0)
    found = plan([image("a", 4 * GB, idle=9), image("b", 4 * GB, idle=8)], disk(55), policy)
    assert ids(found) == ["a", "b"] and found[0].reason == "disk 55% >= 50%: until under 40%"


# --- the cache limit ------------------------------------------------------------------------

def test_cache_over_its_limit_frees_the_excess_least_recently_used_first():
    policy = Policy(cache_bytes=200 * MB, min_age=60)
    found = plan([image("a", 100 * MB, idle=3 * HOUR), image("b", 100 * MB, idle=2 * HOUR),
                  image("c", 100 * MB, idle=HOUR)], policy=policy)
    assert ids(found) == ["a"] and found[0].reason == "cache 300 MB > 200 MB"


def test_images_in_use_count_in_the_cache_but_never_go():
    policy = Policy(cache_bytes=150 * MB, min_age=60)
    found = plan([image("used", 100 * MB, idle=9 * HOUR), image("b", 100 * MB, idle=2 * HOUR),
                  image("c", 100 * MB, idle=HOUR)], policy=policy, in_use=["used"])
    assert ids(found) == ["b", "c"]


def test_several_references_of_one_image_count_and_free_once():
    policy = Policy(cache_bytes=150 * MB, min_age=60)
    found = plan([image("a", 100 * MB, idle=3 * HOUR, refs=["web:v1", "web:latest"]),
                  image("b", 100 * MB, idle=HOUR)], policy=policy)
    assert ids(found) == ["a"] and found[0].references == ("web:latest", "web:v1")
    assert found[0].reason == "cache 200 MB > 150 MB"


def test_the_most_recent_use_of_any_reference_counts():
    present, records = image("a", MB, idle=3 * HOUR, refs=["web:v1", "web:v2"])
    records[1] = Pulled("web:v2", present.image_id, MB, NOW - 30, NOW - 3 * HOUR)
    found = removals(records, [present], set(), None, Policy(cache_bytes=1, min_age=60), NOW)
    assert found == []


def test_cache_within_its_limit_or_no_limit():
    two = [image("a", 100 * MB, idle=HOUR), image("b", 100 * MB, idle=HOUR)]
    assert plan(two, policy=Policy(cache_bytes=200 * MB)) == []
    assert plan(two, policy=Policy(cache_bytes=0)) == []
    assert plan(two, policy=Policy(cache_bytes=None)) == []


def test_disk_reason_first_then_the_cache_once_the_disk_is_met():
    policy = Policy(cache_bytes=100 * MB, min_age=60)
    # 5 GB to free for the disk: a does it; then 6.2 GB of cache is 6.1 GB over: b too
    found = plan([image("a", 6 * GB, idle=3 * HOUR), image("b", 6 * GB, idle=2 * HOUR),
                  image("c", 100 * MB, idle=HOUR), image("d", 100 * MB, idle=HOUR / 2)],
                 Disk(85 * GB, 100 * GB), policy)
    assert [(i, r.reason) for i, r in zip(ids(found), found)] == [
        ("a", "disk 85% >= 85%: until under 80%"), ("b", "cache 12.2 GB > 100 MB"),
        ("c", "cache 12.2 GB > 100 MB")]


# --- the maximum age ------------------------------------------------------------------------

def test_max_age_removes_whatever_the_disk_and_cache_say():
    policy = Policy(min_age=60, max_age=2 * HOUR)
    found = plan([image("a", MB, idle=3 * HOUR), image("b", MB, idle=HOUR)], disk(10), policy)
    assert ids(found) == ["a"] and found[0].reason == "unused for 3 h > max age 2 h"


def test_max_age_zero_is_never():
    assert plan([image("a", MB, idle=1000 * HOUR)], policy=Policy(max_age=0)) == []


# --- never removed --------------------------------------------------------------------------

def test_never_the_platforms_own_images():
    for label in (platform_images.RECIPE_LABEL, platform_images.TEST_IMAGE_LABEL):
        own = image("own", GB, idle=9 * HOUR, labels={label: "x"})
        assert plan([own], disk(99), Policy(cache_bytes=1, max_age=1)) == []


def test_never_an_image_younger_than_the_minimum_age():
    policy = Policy(cache_bytes=1, min_age=120)
    assert plan([image("a", GB, idle=119)], disk(99), policy) == []
    assert ids(plan([image("a", GB, idle=120)], disk(99), policy)) == ["a"]


def test_recently_used_counts_not_recently_pulled():
    policy = Policy(cache_bytes=1, min_age=120)
    old_pull_fresh_use = image("a", GB, idle=30, pulled_ago=9 * HOUR)
    assert plan([old_pull_fresh_use], disk(99), policy) == []


def test_never_one_another_name_was_given_to():
    shared = image("a", GB, idle=HOUR, tags=["web:v1", "mine:keep"], refs=["web:v1"])
    assert plan([shared], disk(99), Policy(cache_bytes=1)) == []
    # the same name written another way is ours
    same = image("b", GB, idle=HOUR, tags=["alpine:latest"], refs=["docker.io/library/alpine"])
    assert ids(plan([same], disk(99), Policy(cache_bytes=1))) == ["b"]


def test_only_what_we_pulled_and_the_engine_still_holds():
    ours = image("a", GB, idle=HOUR)
    theirs = Present("sha256:theirs", 50 * GB, ("theirs:v1",))
    gone = Pulled("gone:v1", "sha256:gone", GB, NOW - 9 * HOUR, NOW - 9 * HOUR)
    pulled, present = node(ours)
    found = removals(pulled + [gone], present + [theirs], set(), disk(99),
                     Policy(cache_bytes=1), NOW)
    assert ids(found) == ["a"]


def test_a_record_without_an_id_is_found_by_its_tag():
    present = Present("sha256:a", GB, ("web:latest",))
    found = removals([Pulled("web", None, None, NOW - HOUR, NOW - HOUR)], [present], set(),
                     None, Policy(cache_bytes=1), NOW)
    assert ids(found) == ["a"] and found[0].size_bytes == GB


def test_ties_go_by_first_pull_then_id():
    found = plan([image("b", MB, idle=HOUR, pulled_ago=2 * HOUR),
                  image("c", MB, idle=HOUR, pulled_ago=3 * HOUR),
                  image("a", MB, idle=HOUR, pulled_ago=2 * HOUR)],
                 policy=Policy(cache_bytes=1))
    assert ids(found) == ["c", "a", "b"]


def test_the_gc_label_is_the_one_the_test_images_carry():
    from core.imagegc import PROTECTED_LABELS
    assert set(PROTECTED_LABELS) == {platform_images.RECIPE_LABEL,
                                     platform_images.TEST_IMAGE_LABEL}


def test_words():
    assert [human_bytes(n) for n in (812, 999.6, 3_970_000, 2 * 10 ** 12)] == [
        "812 B", "1 kB", "3.97 MB", "2 TB"]
    assert [human_seconds(s) for s in (45, 150, 3 * HOUR, 4e7)] == [
        "45 s", "2.5 min", "3 h", "11111 h"]
    assert [normal(r) for r in ("alpine", "127.0.0.1:5000/team/web:v2", "x@sha256:ab")] == [
        "alpine:latest", "127.0.0.1:5000/team/web:v2", "x@sha256:ab"]


# --- properties -----------------------------------------------------------------------------

@st.composite
def nodes(draw):
    """Up to 8 images: ours or not, some in use, protected, shared or young; a disk."""
    count = draw(st.integers(0, 8))
    pulled, present, in_use, facts = [], [], set(), {}
    for n in range(count):
        image_id, size = f"sha256:{n}", draw(st.integers(1, 40)) * MB
        refs = [f"img{n}:v{k}" for k in range(draw(st.integers(1, 3)))]
        extra = ["other:keep"] if draw(st.booleans()) and draw(st.booleans()) else []
        labels = {platform_images.TEST_IMAGE_LABEL: "true"} if draw(st.integers(0, 5)) == 0 \
            else {}
        present.append(Present(image_id, size, tuple(refs + extra), labels))
        if draw(st.integers(0, 4)) == 0:
            continue  # not pulled by us
        idles = [draw(st.sampled_from([30, 119, 120, 600, HOUR, 3 * HOUR, 9 * HOUR]))
                 for _ in refs]
        pulled += [Pulled(ref, image_id, size, NOW - idle, NOW - 9 * HOUR) for ref, idle
                   in zip(refs, idles)]
        if draw(st.integers(0, 3)) == 0:
            in_use.add(image_id)
        facts[image_id] = (size, NOW - min(idles), bool(extra), bool(labels))
    capacity = draw(st.integers(20, 400)) * MB
    used = draw(st.sampled_from([None, 30, 84, 85, 91, 100]))
    figures = None if used is None else Disk(
        min(capacity, capacity * used // 100 + draw(st.integers(0, MB))), capacity)
    policy = Policy(high_percent=draw(st.sampled_from([50, 85, 90])),
                    low_percent=draw(st.sampled_from([40, 80])),
                    cache_bytes=draw(st.sampled_from([None, 0, 10 * MB, 40 * MB, 80 * MB])),
                    min_age=120, max_age=draw(st.sampled_from([0, 2 * HOUR])))
    return pulled, present, in_use, figures, policy, facts


def allowed(image_id, facts, in_use, policy) -> bool:
    _, last_used, shared, own = facts[image_id]
    return (image_id not in in_use and not shared and not own
            and NOW - last_used >= policy.min_age)


def unmet(freed: int, total: int, figures, policy) -> bool:
    """Is a target (disk or cache) still unmet after freeing ``freed`` bytes?"""
    disk_need = disk_to_free(figures, policy)[0]
    over_cache = bool(policy.cache_bytes) and total - freed > policy.cache_bytes
    return freed < disk_need or over_cache


@settings(max_examples=100, deadline=None)
@given(nodes())
def test_properties(case):
    pulled, present, in_use, figures, policy, facts = case
    found = removals(pulled, present, in_use, figures, policy, NOW)
    removed = [r.image_id for r in found]
    assert len(removed) == len(set(removed))
    # only what may go, least recently used first
    assert all(allowed(i, facts, in_use, policy) for i in removed)
    order = [facts[i][1] for i in removed]
    assert order == sorted(order)
    left = [i for i in facts if allowed(i, facts, in_use, policy) and i not in removed]
    assert all(facts[i][1] >= order[-1] for i in left) if order else True
    # sizes counted once per image
    assert all(r.size_bytes == facts[r.image_id][0] for r in found)
    total = sum(size for size, *_ in facts.values())
    freed = sum(r.size_bytes for r in found)
    aged = [r for r in found if policy.max_age and NOW - facts[r.image_id][1] > policy.max_age]
    # everything past the maximum age goes
    assert len(aged) == sum(1 for i in facts if allowed(i, facts, in_use, policy)
                            and policy.max_age and NOW - facts[i][1] > policy.max_age)
    # enough: anything allowed left means every target is met
    if left:
        assert not unmet(freed, total, figures, policy)
    # no more than needed: without the last one (not removed for its age) a target is unmet
    if len(found) > len(aged):
        assert unmet(freed - found[-1].size_bytes, total, figures, policy)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 10 ** 13), st.data(), st.sampled_from([(85, 80), (90, 80), (70, 50)]))
def test_kubelet_rule_against_the_percentages(capacity, data, thresholds):
    used = data.draw(st.integers(0, capacity))
    high, low = thresholds
    need, reason = disk_to_free(Disk(used, capacity), Policy(high_percent=high,
                                                               low_percent=low))
    # the kubelet's whole percent is the used percentage rounded up
    starts = -(-used * 100 // capacity) >= high
    assert bool(reason) == starts and (need > 0 or not starts or capacity < 100)
    if starts:
        # freeing it brings the disk down to the low threshold, to a byte
        assert low * capacity <= (used - need) * 100 <= low * capacity + 100
