"""The reconcile planner's vocabulary (core.plan): an observed instance, a deployment's
desired state, the actions a plan asks for, and the plan itself. Data only."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Instance:
    name: str
    slot: int
    generation: int
    state: str
    started_at: float | None = None     # epoch seconds
    health: str = "none"
    exit_code: int | None = None
    draining: bool = False
    role: str = "active"
    node: str | None = None
    resources: dict = field(default_factory=dict)   # the limits it runs with


@dataclass(frozen=True)
class Desired:
    replicas: int
    generation: int
    stable_generation: int | None = None
    retired: frozenset = frozenset()
    max_surge: int = 1
    max_unavailable: int = 0
    order: str = "start-first"
    monitor: float = 5.0
    progress_deadline: float = 600.0
    rollout_started_at: float | None = None
    has_health_check: bool = False
    backoff_until: dict = field(default_factory=dict)    # slot -> epoch of next allowed start
    failures: dict = field(default_factory=dict)         # slot -> consecutive failures
    deleting: bool = False
    paused: bool = False
    rolling_back: bool = False
    assignment: dict = field(default_factory=dict)   # slot -> node it is placed on
    pending: dict = field(default_factory=dict)      # slot -> why it is placed nowhere
    slots: tuple | None = None   # the wanted slots when not the lowest ones (global mode)
    resources: dict = field(default_factory=dict)    # limits applied live, never a rollout
    warm_pool: int = 0     # paused members kept beside the replicas (core.pool)


@dataclass(frozen=True)
class Action:
    # create, start, update, remove, stop, keep, record_failure, rollout_failed, wait; and the
    # warm pool's (core.pool): wake, to_pool, pause
    kind: str
    reason: str
    slot: int | None = None
    name: str | None = None
    generation: int | None = None
    graceful: bool = True
    until: float | None = None
    node: str | None = None     # where a create goes; where the instance acted on is
    role: str = "active"        # what a create makes: a replica, or a warm pool member


@dataclass
class Plan:
    actions: list
    state: str
    reason: str
    counts: dict
    pool: list = field(default_factory=list)   # the warm pool's upkeep: background work

    @property
    def work(self) -> list:
        """Actions that change something (everything but waits)."""
        return [a for a in self.actions if a.kind != "wait"]

    @property
    def pool_work(self) -> list:
        return [a for a in self.pool if a.kind != "wait"]

    @property
    def waits(self) -> list:
        return [a for a in self.actions if a.kind == "wait"]


@dataclass
class SlotPlan:
    """What one wanted slot needs."""
    actions: list = field(default_factory=list)
    failed: Action | None = None       # the rollout failed here
    surging: bool = False              # a new instance beside an old one
    needs_update: bool = False         # only an old-generation instance: rolling update
    crashloop: bool = False
