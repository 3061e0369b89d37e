"""Progress of an image pull or push, from the Engine API's JSON messages: bytes done and
total over the layers, and the error a stream ends with.

Docker reports per layer ("id"): "Downloading"/"Pushing" with progressDetail current/total,
then "Download complete", "Extracting", "Pull complete", "Pushed", "Already exists" or
"Layer already exists". A layer known complete counts its whole size; a layer whose size is
not known yet counts nothing in the total (the total grows as layers report theirs).
"""
from __future__ import annotations

from dataclasses import dataclass, field

MOVING = {"Downloading", "Pushing"}
COMPLETE = {"Download complete", "Pull complete", "Pushed", "Already exists",
            "Layer already exists", "Verifying Checksum"}


@dataclass
class Transfer:
    """Bytes done and total over the layers of one pull or push."""
    layers: dict[str, list[int]] = field(default_factory=dict)   # id -> [done, total]
    status: str = ""
    error: str | None = None
    digest: str | None = None      # a push's final digest ("aux"), or a pull's "Digest: ..."

    @property
    def done(self) -> int:
        return sum(done for done, _ in self.layers.values())

    @property
    def total(self) -> int:
        return sum(total for _, total in self.layers.values())

    def feed(self, message: dict) -> bool:
        """Take one message; True when the byte counts moved."""
        if message.get("error") or message.get("errorDetail"):
            detail = message.get("errorDetail") or {}
            self.error = detail.get("message") or message.get("error") or "failed"
            return False
        aux = message.get("aux") or {}
        if aux.get("Digest"):
            self.digest = aux["Digest"]
        status = message.get("status") or ""
        if status.startswith("Digest: "):
            self.digest = status.split(" ", 1)[1].strip()
        layer = message.get("id")
        self.status = f"{layer}: {status}" if layer else status
        if not layer or status.startswith(("Pulling from", "Digest", "Status", "The push")):
            return False
        before = self.layers.get(layer, [0, 0])
        after = list(before)
        detail = message.get("progressDetail") or {}
        if status in MOVING and detail.get("total"):
            after = [min(int(detail.get("current") or 0), int(detail["total"])),
                     int(detail["total"])]
        elif status in COMPLETE:
            after = [before[1], before[1]]
        self.layers[layer] = after
        return after != before
