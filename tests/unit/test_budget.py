"""core.budget: the Postgres connection budget's arithmetic and gunicorn's sizing."""
from __future__ import annotations

import config
from core import budget


def sizes(**over) -> budget.Sizes:
    base = dict(cpus=2, web_workers=0, web_threads=16, worker_processes=1, worker_threads=8,
                executor_threads=8, pool_max=20, max_connections=300, superuser_reserved=3)
    return budget.Sizes(**{**base, **over})


def line(b: budget.Budget, process: str) -> budget.Line:
    return next(item for item in b.lines if item.process == process)


def test_each_process_counts_its_pool_as_far_as_its_threads_and_its_own_connections():
    b = budget.budget(sizes())
    assert line(b, "web").per_process == 16 + 3       # min(pool 20, threads 16) + listeners
    assert line(b, "worker").per_process == 8 + 8     # pool (8 threads) + a lock per thread
    assert line(b, "executor").per_process == 8
    assert line(b, "scheduler").per_process == 21     # pool 20 + leader session
    assert line(b, "agent").per_process == 21         # pool 20 + node claim
    assert b.total == 5 * 19 + 16 + 8 + 21 + 21 == 161


def test_the_available_connections_leave_the_reserve_and_a_fifth_free():
    assert budget.available(sizes(max_connections=300)) == 300 - 3 - 60
    assert budget.available(sizes(max_connections=100, superuser_reserved=5)) == 100 - 5 - 20


def test_gunicorn_processes_follow_the_cores_within_the_budget():
    assert budget.web_processes(sizes(cpus=1)) == 3
    assert budget.web_processes(sizes(cpus=2)) == 5
    # 16 cores would want 33; 237 available - 66 for the others leaves 171 // 19 = 9
    assert budget.web_processes(sizes(cpus=16)) == 9
    assert budget.budget(sizes(cpus=16)).fits


def test_a_requested_count_is_kept_unless_the_budget_cannot_hold_it():
    assert budget.web_processes(sizes(web_workers=2)) == 2
    assert budget.web_processes(sizes(web_workers=50)) == 9


def test_a_small_server_gets_one_web_process_and_says_it_does_not_fit():
    b = budget.budget(sizes(max_connections=100))
    assert b.web_processes() == 1
    assert b.total == 19 + 66 and b.available == 77 and not b.fits
    assert "DOES NOT FIT" in budget.describe(b, sizes(max_connections=100))


def test_more_worker_processes_or_threads_leave_fewer_web_processes():
    # worker: 4 x (16 + 16) = 128; left 237 - 128 - 50 = 59 -> 3 web processes of 19
    assert budget.web_processes(sizes(cpus=8, worker_processes=4, worker_threads=16)) == 3


def test_the_plan_of_the_default_configuration_fits_on_the_bootstrapped_postgres():
    cfg = config.from_env({})
    for cpus in (1, 2, 4, 8, 16, 64):
        found, plan = budget.plan(cfg, cpus, (300, 3))
        assert plan.fits, budget.describe(plan, found)
        assert plan.total + budget.node_extra(found) <= 300 - 3  # a second node still fits


def test_the_description_names_every_process_and_the_totals():
    found, plan = budget.plan(config.from_env({}), 2, (300, 3))
    text = budget.describe(plan, found)
    for process in ("web", "worker", "executor", "scheduler", "agent"):
        assert f"  {process} " in text
    assert "total 161 of 237 available (max_connections 300" in text
    assert "each further node adds 45" in text
