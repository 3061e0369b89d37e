"""The Postgres connection budget: what each process may open, how many web processes fit.

Every process has a pool of at most ``pool_max`` connections, but never uses more at once
than it has threads to use them; some also hold connections of their own outside the pool:

- web: its pool (as many as its threads for ordinary requests: a live stream's thread holds
  no connection) + 3 LISTEN connections (jobs and tokens; services; events);
- worker: its pool + one per thread (a deployment's pass holds its advisory lock on a
  connection of its own);
- executor: its pool;
- scheduler: its pool + its leader session;
- agent: its pool + its node claim.

The total must stay under Postgres's ``max_connections`` less its superuser reserve and a
headroom (operators' psql, migrations, the tests, a node joining). gunicorn's processes are
sized from the cores (gunicorn's guideline, 2 x cores + 1) unless set, and never beyond what
the budget leaves for them.
"""
from __future__ import annotations

from dataclasses import dataclass

WEB_LISTENERS = 3
HEADROOM = 0.2  # of max_connections, kept free beyond the superuser reserve


@dataclass(frozen=True)
class Line:
    process: str
    count: int          # processes of this kind
    per_process: int    # connections each may open
    why: str

    @property
    def total(self) -> int:
        return self.count * self.per_process


@dataclass(frozen=True)
class Sizes:
    """What the budget is computed from (the configuration and the server's limits)."""
    cpus: int
    web_workers: int          # 0: from the cores
    web_threads: int
    worker_processes: int
    worker_threads: int
    executor_threads: int
    pool_max: int
    max_connections: int
    superuser_reserved: int = 3

    @classmethod
    def of(cls, cfg, cpus: int, max_connections: int, superuser_reserved: int) -> "Sizes":
        """From a config.Config (read by attribute: core imports nothing of ours)."""
        return cls(cpus=cpus, web_workers=cfg.web_workers, web_threads=cfg.web_threads,
                   worker_processes=cfg.worker_processes, worker_threads=cfg.worker_threads,
                   executor_threads=cfg.executor_threads, pool_max=cfg.db_pool_max,
                   max_connections=max_connections, superuser_reserved=superuser_reserved)


@dataclass(frozen=True)
class Budget:
    lines: tuple[Line, ...]
    available: int      # max_connections less the reserve and the headroom
    max_connections: int

    @property
    def total(self) -> int:
        return sum(line.total for line in self.lines)

    @property
    def fits(self) -> bool:
        return self.total <= self.available

    def web_processes(self) -> int:
        return next(line.count for line in self.lines if line.process == "web")


def available(sizes: Sizes) -> int:
    return sizes.max_connections - sizes.superuser_reserved - int(
        sizes.max_connections * HEADROOM)


def fixed_lines(sizes: Sizes) -> list[Line]:
    """Every process but web (their number does not depend on the cores)."""
    pool = sizes.pool_max
    worker_pool = min(pool, sizes.worker_threads)
    return [
        Line("worker", sizes.worker_processes, worker_pool + sizes.worker_threads,
             f"pool {worker_pool} + {sizes.worker_threads} deployment locks"),
        Line("executor", 1, min(pool, sizes.executor_threads),
             f"pool {min(pool, sizes.executor_threads)}"),
        Line("scheduler", 1, pool + 1, f"pool {pool} + leader session"),
        Line("agent", 1, pool + 1, f"pool {pool} + node claim"),
    ]


def web_per_process(sizes: Sizes) -> int:
    return min(sizes.pool_max, sizes.web_threads) + WEB_LISTENERS


def web_processes(sizes: Sizes) -> int:
    """gunicorn's processes: as asked, else 2 x cores + 1; at most what the budget leaves
    (at least one)."""
    wanted = sizes.web_workers or 2 * max(1, sizes.cpus) + 1
    left = available(sizes) - sum(line.total for line in fixed_lines(sizes))
    return max(1, min(wanted, left // web_per_process(sizes)))


def budget(sizes: Sizes) -> Budget:
    per = web_per_process(sizes)
    web = Line("web", web_processes(sizes), per,
               f"pool {per - WEB_LISTENERS} + {WEB_LISTENERS} listeners")
    return Budget((web, *fixed_lines(sizes)), available(sizes), sizes.max_connections)


def plan(cfg, cpus: int, limits: tuple[int, int]) -> tuple[Sizes, Budget]:
    """The budget of a config.Config on ``cpus`` cores under the server's ``limits``
    (max_connections, superuser_reserved_connections)."""
    sizes = Sizes.of(cfg, cpus, *limits)
    return sizes, budget(sizes)


def node_extra(sizes: Sizes) -> int:
    """What each further node (`make node`: worker, executor, agent) adds."""
    return sum(line.total for line in fixed_lines(sizes) if line.process != "scheduler")


def describe(b: Budget, sizes: Sizes) -> str:
    rows = [f"  {line.process:<10}{line.count:>3} x {line.per_process:<4}= {line.total:<5}"
            f"({line.why})" for line in b.lines]
    verdict = "fits" if b.fits else "DOES NOT FIT: lower the pool, threads or processes"
    return "\n".join([
        f"Postgres connection budget ({sizes.cpus} cores; gunicorn {b.web_processes()} "
        f"processes x {sizes.web_threads} threads):", *rows,
        f"  total {b.total} of {b.available} available (max_connections {b.max_connections}"
        f" - {sizes.superuser_reserved} reserved - {int(HEADROOM * 100)} % headroom): "
        f"{verdict}; each further node adds {node_extra(sizes)}"])
