"""Image GC of one node, pure: which of the images this installation pulled go, in which
order, and why.

The kubelet is the reference (pkg/kubelet/images/image_gc_manager.go):
- only images this installation pulled are candidates; among them never one a container
  uses (any state), one carrying the platform's own label, one another name was given to
  on the engine (someone else's too), nor one unused for less than ``min_age``;
- candidates go least recently used first (ties: first pulled, then id);
- unused for more than ``max_age`` (when set): removed whatever the disk says;
- the engine's image disk: usage = 100 - floor(available x 100 / capacity) in whole
  percent; at or over ``high`` the GC frees capacity x (100 - low) / 100 - available bytes;
- the pulled images' total (each image counted once, however many references) over the
  cache limit: the excess is freed;
- it stops as soon as every target is met; removing an image frees its size once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Set on the platform's own test images (ops/images.py builds them with both): never removed.
PROTECTED_LABELS = ("harbormaster.image-recipe", "harbormaster.test-image")


@dataclass(frozen=True)
class Pulled:
    """One reference this installation pulled on the node (times in epoch seconds)."""
    reference: str
    image_id: str | None
    size_bytes: int | None
    last_used: float
    pulled_at: float


@dataclass(frozen=True)
class Present:
    """One image the engine holds."""
    image_id: str
    size_bytes: int
    tags: tuple[str, ...] = ()
    labels: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Disk:
    """The filesystem holding the engine's images."""
    used_bytes: int
    capacity_bytes: int


@dataclass(frozen=True)
class Policy:
    high_percent: float = 85.0
    low_percent: float = 80.0
    cache_bytes: int | None = None      # 0 or None: no limit
    min_age: float = 120.0              # seconds unused before an image may go
    max_age: float = 0.0                # seconds unused after which it goes (0: never)


@dataclass(frozen=True)
class Removal:
    image_id: str
    references: tuple[str, ...]
    size_bytes: int
    idle_seconds: float
    reason: str


@dataclass(frozen=True)
class _Candidate:
    image_id: str
    references: tuple[str, ...]
    size_bytes: int
    last_used: float
    pulled_at: float


def removals(pulled: list[Pulled], present: list[Present], in_use: set[str],
             disk: Disk | None, policy: Policy, now: float) -> list[Removal]:
    """The images to remove, least recently used first, each with its reason."""
    mine = _pulled_images(pulled, present)
    disk_need, disk_reason = disk_to_free(disk, policy)
    total = sum(image.size_bytes for image, _ in mine.values())
    cache_need, cache_reason = 0, ""
    if policy.cache_bytes and total > policy.cache_bytes:
        cache_need = total - policy.cache_bytes
        cache_reason = f"cache {human_bytes(total)} > {human_bytes(policy.cache_bytes)}"
    out = []
    for candidate in candidates(mine, in_use, policy, now):
        idle = now - candidate.last_used
        if policy.max_age and idle > policy.max_age:
            reason = f"unused for {human_seconds(idle)} > max age {human_seconds(policy.max_age)}"
        elif disk_need > 0:
            reason = disk_reason
        elif cache_need > 0:
            reason = cache_reason
        else:
            break  # every target met (the max-age ones come first: they are the oldest)
        out.append(Removal(candidate.image_id, candidate.references, candidate.size_bytes,
                           idle, reason))
        disk_need -= candidate.size_bytes
        cache_need -= candidate.size_bytes
    return out


def disk_to_free(disk: Disk | None, policy: Policy) -> tuple[int, str]:
    """(bytes to free, why) by the kubelet's rule; (0, "") under the high threshold or when
    the figures are unknown."""
    if disk is None or disk.capacity_bytes <= 0:
        return 0, ""
    capacity = disk.capacity_bytes
    available = min(capacity, max(0, capacity - disk.used_bytes))
    usage = 100 - available * 100 // capacity
    if usage < policy.high_percent:
        return 0, ""
    need = int(capacity * (100 - policy.low_percent) // 100) - available
    return need, (f"disk {usage}% >= {policy.high_percent:g}%:"
                  f" until under {policy.low_percent:g}%")


def candidates(mine: dict[str, tuple[Present, list[Pulled]]], in_use: set[str],
               policy: Policy, now: float) -> list[_Candidate]:
    """The pulled images that may go, least recently used first."""
    out = []
    for image_id, (image, records) in mine.items():
        last_used = max(r.last_used for r in records)
        if (image_id in in_use or protected(image.labels) or _shared(image, records)
                or now - last_used < policy.min_age):
            continue
        out.append(_Candidate(image_id, tuple(sorted(r.reference for r in records)),
                              image.size_bytes, last_used, min(r.pulled_at for r in records)))
    return sorted(out, key=lambda c: (c.last_used, c.pulled_at, c.image_id))


def protected(labels: dict | None) -> bool:
    return any(label in (labels or {}) for label in PROTECTED_LABELS)


def _pulled_images(pulled: list[Pulled],
                   present: list[Present]) -> dict[str, tuple[Present, list[Pulled]]]:
    """Image id -> (the engine's image, our references of it), for the pulled images the
    engine still holds (a record without an id is found by its tag)."""
    by_id = {image.image_id: image for image in present}
    by_tag = {normal(tag): image for image in present for tag in image.tags}
    mine: dict[str, tuple[Present, list[Pulled]]] = {}
    for record in pulled:
        image = (by_id.get(record.image_id) if record.image_id
                 else by_tag.get(normal(record.reference)))
        if image is not None:
            mine.setdefault(image.image_id, (image, []))[1].append(record)
    return mine


def _shared(image: Present, records: list[Pulled]) -> bool:
    """The engine gave the image a name we did not pull: it is someone else's too (and
    removing our references would not free it)."""
    ours = {normal(r.reference) for r in records}
    return any(normal(tag) not in ours for tag in image.tags)


def normal(reference: str) -> str:
    """A reference as the engine lists its tags: ``alpine`` -> ``alpine:latest``,
    ``docker.io/library/alpine:3`` -> ``alpine:3``; a digest reference as it is."""
    if "@" in reference:
        return reference
    name, tag = reference, "latest"
    if ":" in reference.rsplit("/", 1)[-1]:
        name, tag = reference.rsplit(":", 1)
    for prefix in ("docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name.startswith("library/") and name.count("/") == 1:
        name = name[len("library/"):]
    return f"{name}:{tag}"


def human_bytes(count: float) -> str:
    """Decimal units, as Docker prints sizes: 300 MB, 3.97 MB, 812 B."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(count) < 999.5:
            return f"{_figure(count)} {unit}"
        count /= 1000
    return f"{_figure(count)} TB"


def human_seconds(seconds: float) -> str:
    """3 h, 2.5 min, 45 s."""
    if seconds >= 3600:
        return f"{_figure(seconds / 3600)} h"
    if seconds >= 60:
        return f"{_figure(seconds / 60)} min"
    return f"{_figure(seconds)} s"


def _figure(value: float) -> str:
    # three significant digits, never in exponent form
    return f"{value:.3g}" if abs(value) < 999.5 else f"{value:.0f}"
