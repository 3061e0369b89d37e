"""The accept path of a mutation: the base commit and this checkout side by side, one run.

Each side is a private platform run by a side process started from its own tree: the base
is a git worktree of BASE made in a temp dir (removed after), this side is this checkout.
Each gets a deployment `load` (1 replica), then its worker is stopped. Rounds alternate
between the sides: CLIENTS clients POST /api/deployments/load/scale {"replicas": 1} (its
current count) for SECONDS; after each round the bench checks accepted answers (202) = job
rows = Redis messages naming those jobs, then purges the queue and cancels the jobs.
Printed per side: accepted/s, p50, p99, and web CPU-ms per accepted mutation (utime + stime
of gunicorn's master and workers, from /proc), with the targets beside.
Then, on each side, 100 managed containers: GET /api/containers?limit=200 vs the Engine
API's own list of the same containers (by the installation's label), interleaved, medians.
Usage: python bench/api_load.py [seconds per round] [rounds] [clients] [--profile DIR]
(--profile records py-spy's raw stacks of each side's web during its first round)
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BASE = "b0f55ff"
HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


# --- the side process: one private platform, driven over stdin/stdout ------------------

def serve() -> None:
    """Start a private platform from this tree, prepare it, report it; then obey stdin."""
    import uuid

    import requests
    from common import private_platform
    plat = private_platform(HARBORMASTER_WEB_WORKERS="")  # each side's own default sizing
    # container names are the engine's: the two sides' deployments are named apart
    load, many = (f"{what}-{uuid.uuid4().hex[:6]}" for what in ("load", "many"))
    try:
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {plat.admin_token}"
        r = api.post(f"{plat.url}/api/deployments", params={"wait": 60}, timeout=90, json={
            "name": load, "image": "harbormaster/busybox-httpd", "replicas": 1})
        assert r.json()["status"] == "succeeded", r.text
        plat.stop_program("worker")
        pids = {name: int(path.read_text().split()[0]) for name, path in (
            ("postgres_pid", plat.data / "pgdata" / "postmaster.pid"),
            ("redis_pid", plat.data / "redis" / "redis.pid"))}
        say({"url": plat.url, "token": plat.admin_token, "web_pid": plat.program_pid("web"),
             **pids,
             "database_url": plat.env["DATABASE_URL"], "redis_port": plat.redis_port,
             "cluster": plat.cluster_id, "deployment": load})
        for line in sys.stdin:
            command = line.split()
            if command[:1] == ["containers"]:
                plat.start_program("worker")
                n = int(command[1])
                r = api.post(f"{plat.url}/api/deployments", timeout=60,
                             json={"name": many, "image": "harbormaster/busybox-httpd",
                                   "replicas": n, "max_replicas": n})
                assert r.status_code == 202, r.text
                recorded = ("SELECT count(*) FROM containers WHERE deployment = %s AND"
                            " state = 'running' AND role = 'active'")
                deadline = time.monotonic() + 600
                while plat.sql(recorded, (many,))[0][0] < n:
                    assert time.monotonic() < deadline, f"{n} instances not running in 600 s"
                    time.sleep(1)
                say({"containers": n})
            elif command[:1] == ["quit"]:
                break
    finally:
        plat.teardown()
        say({"stopped": True})


def say(obj: dict) -> None:
    print("SIDE " + json.dumps(obj), flush=True)


class Side:
    """The bench's handle on one side process."""

    def __init__(self, name: str, tree: Path):
        self.name, self.tree = name, tree
        self.proc = subprocess.Popen(
            [sys.executable, str(tree / "bench" / HERE.name), "--serve"], cwd=tree,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.info = self.expect("url")
        self.rounds: list[dict] = []
        self.listing: tuple[list[float], list[float]] = ([], [])
        self.listed = (0, 0)

    def expect(self, key: str) -> dict:
        for line in self.proc.stdout:
            if line.startswith("SIDE "):
                found = json.loads(line[5:])
                if key in found:
                    return found
        raise RuntimeError(f"side {self.name} ended before saying {key!r}")

    def command(self, text: str, answer: str) -> dict:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self.expect(answer)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command("quit", "stopped")
            finally:
                self.proc.wait(timeout=120)


# --- measuring -------------------------------------------------------------------------

def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children, the live ones and those it reaped."""
    def ticks(one: int) -> int:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            return 0  # ended meanwhile: counted in its parent's cutime once reaped
        return sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return (ticks(pid) + sum(ticks(int(child)) for child in children)) / TICKS


def cpu_now(info: dict) -> dict[str, float]:
    return {what: tree_cpu(info[f"{what}_pid"]) for what in ("web", "postgres", "redis")}


def client(info: dict, stop: float, out: list, errors: list) -> None:
    host, port = info["url"].removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    path, token = f"/api/deployments/{info['deployment']}/scale", info["token"]
    body = json.dumps({"replicas": 1})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        while time.monotonic() < stop:
            started = time.perf_counter()
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            answer = response.read()
            elapsed = time.perf_counter() - started
            if response.status == 202:
                out.append((elapsed, json.loads(answer)["id"]))
            else:
                errors.append(response.status)
    except Exception as exc:  # noqa: BLE001 - reported with the round, fails the check
        errors.append(repr(exc))
    finally:
        conn.close()


def load_round(side: Side, seconds: float, clients: int, profile: Path | None) -> dict:
    info = side.info
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record",
             "--pid", str(info["web_pid"]), "--subprocesses", "--nonblocking", "--format",
             "raw", "--rate", "250", "--duration", str(int(seconds)), "-o",
             str(profile / f"{side.name}.txt")], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
    db_start = sql(info, "SELECT now()")[0][0]
    answers, errors = [], []
    cpu_before, wall = cpu_now(info), time.monotonic()
    threads = [threading.Thread(target=client, args=(info, wall + seconds, answers, errors))
               for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - wall
    cpu = {k: v - cpu_before[k] for k, v in cpu_now(info).items()}
    if spy is not None:
        spy.wait(timeout=60)
    checked = check_and_purge(info, db_start, {job for _, job in answers})
    latencies = sorted(t for t, _ in answers)
    return {"accepted": len(answers), "per_s": len(answers) / wall, "wall": wall,
            "p50": pct(latencies, 50), "p99": pct(latencies, 99),
            **{f"{k}_ms" if k != "web" else "cpu_ms": 1000 * v / max(1, len(answers))
               for k, v in cpu.items()}, "errors": errors[:5],
            "n_errors": len(errors), **checked}


def pct(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def sql(info: dict, query: str, params=()) -> list[tuple]:
    import psycopg
    with psycopg.connect(info["database_url"], autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def check_and_purge(info: dict, since, accepted: set[str]) -> dict:
    """Job rows and Redis messages of this round against the accepted answers; then the
    queue is emptied and those jobs cancelled (the worker is stopped: nothing ran)."""
    import redis
    rows = {str(r[0]) for r in sql(info, "SELECT id FROM jobs WHERE kind = 'scale_deployment'"
                                         " AND created_at >= %s", (since,))}
    r = redis.Redis(port=info["redis_port"])
    messages = [json.loads(raw) for raw in r.hvals("harbormaster:default.msgs")]
    named = [m["options"].get("job_id") for m in messages]
    ours = [job for job in named if job in rows]
    r.delete("harbormaster:default", "harbormaster:default.msgs")
    sql(info, "UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE status ="
              " 'queued' AND kind = 'scale_deployment'")
    return {"rows": len(rows), "messages": len(ours), "distinct": len(set(ours)),
            "consistent": accepted == rows == set(ours) and len(ours) == len(rows)}


def listing(side: Side, engine, rounds: int = 30) -> tuple[list[float], list[float]]:
    """GET /api/containers?limit=200 and the Engine API's list of the same containers."""
    import requests
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {side.info['token']}"
    label = {"label": f"harbormaster.cluster={side.info['cluster']}"}
    ours, theirs = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        r = api.get(f"{side.info['url']}/api/containers", params={"limit": 200})
        ours.append(time.perf_counter() - started)
        items = r.json().get("items", []) if r.status_code == 200 else []
        started = time.perf_counter()
        found = engine.containers(all=True, filters=label)
        theirs.append(time.perf_counter() - started)
        # a loaded engine may hold an instance the platform has not recorded yet (or the
        # other way round): the sizes are printed, the timings compared
        assert len(items) >= 90 and len(found) >= 90, (r.status_code, len(items), len(found))
    side.listed = (len(items), len(found))
    return ours, theirs


# --- the run ---------------------------------------------------------------------------

def base_tree(where: Path) -> Path:
    tree = where / "base"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), BASE],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.copy(HERE, tree / "bench" / HERE.name)  # the side process runs from its tree
    return tree


def run(seconds: float, rounds: int, clients: int, profile: Path | None) -> list[Side]:
    import docker
    where = Path(tempfile.mkdtemp(prefix="hm-api-load-"))
    sides: list[Side] = []
    try:
        tree = base_tree(where)
        sides.append(Side(f"base {BASE}", tree))
        sides.append(Side("this change", ROOT))
        for round_ in range(rounds):
            for side in sides:
                spy = profile if profile is not None and round_ == 0 else None
                result = load_round(side, seconds, clients, spy)
                side.rounds.append(result)
                print(f"  round {round_ + 1} {side.name:<14} {summary(result)}", flush=True)
        engine = docker.APIClient(base_url="unix:///var/run/docker.sock")
        for side in sides:
            side.command("containers 100", "containers")
            side.listing = listing(side, engine)
        return sides
    finally:
        for side in sides:
            try:
                side.stop()
            except Exception as exc:  # noqa: BLE001 - the other side and the tree still go
                print(f"stopping {side.name}: {exc}", file=sys.stderr)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                        str(where / "base")], check=False)
        shutil.rmtree(where, ignore_errors=True)


def summary(r: dict) -> str:
    return (f"accepted {r['accepted']:5d} ({r['per_s']:6.1f}/s)  p50 {1000 * r['p50']:6.1f} ms"
            f"  p99 {1000 * r['p99']:6.1f} ms  CPU-ms/mutation web {r['cpu_ms']:5.2f} "
            f"postgres {r['postgres_ms']:4.2f} redis {r['redis_ms']:4.2f}  "
            f"rows {r['rows']} messages {r['messages']} "
            f"{'consistent' if r['consistent'] else 'INCONSISTENT'}"
            f"{'  errors ' + str(r['n_errors']) + ' ' + str(r['errors']) if r['errors'] else ''}")


def report(sides: list[Side], clients: int) -> None:
    med = statistics.median
    figures = {s.name: {k: med(r[k] for r in s.rounds) for k in (
        "per_s", "p50", "p99", "cpu_ms", "postgres_ms", "redis_ms")} for s in sides}
    base, ours = (figures[s.name] for s in sides)
    print(f"\nPOST /api/deployments/<name>/scale to its current count, {clients} clients, "
          f"worker stopped (median of {len(sides[0].rounds)} rounds)")
    print(f"  {'':<16}{'accepted/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'web CPU-ms':>12}"
          f"   (postgres, redis CPU-ms)")
    for side in sides:
        f = figures[side.name]
        print(f"  {side.name:<16}{f['per_s']:11.1f}{1000 * f['p50']:9.1f}"
              f"{1000 * f['p99']:9.1f}{f['cpu_ms']:12.2f}   ({f['postgres_ms']:.2f}, "
              f"{f['redis_ms']:.2f})")
    print(f"  this / base     {ours['per_s'] / base['per_s']:10.2f}x"
          f"{ours['p50'] / base['p50']:8.2f}x{ours['p99'] / base['p99']:8.2f}x"
          f"{ours['cpu_ms'] / base['cpu_ms']:11.2f}x")
    print("  targets           >= 2x            <= 0.5x    <= 0.33x")
    consistent = all(r["consistent"] for s in sides for r in s.rounds)
    print(f"  accepted answers = job rows = Redis messages in every round: {consistent}")
    print("\nGET /api/containers (100 managed containers) vs the Engine API's list of them"
          " (30 each, interleaved; ms, median / fastest: the fastest is the cost without the"
          " machine's other load)")
    for side in sides:
        ours_list, engine_list = side.listing
        print(f"  {side.name:<16} ours {1000 * med(ours_list):6.1f} / "
              f"{1000 * min(ours_list):5.1f}   engine {1000 * med(engine_list):6.1f} / "
              f"{1000 * min(engine_list):5.1f}   ratio {med(ours_list) / med(engine_list):.2f}x"
              f" / {min(ours_list) / min(engine_list):.2f}x   (target <= 1x; "
              f"{side.listed[0]} listed by ours, {side.listed[1]} by the engine)")


def main(argv: list[str]) -> None:
    if "--serve" in argv:
        serve()
        return
    profile = None
    if "--profile" in argv:
        at = argv.index("--profile")
        profile = Path(argv[at + 1]).resolve()
        profile.mkdir(parents=True, exist_ok=True)
        argv = argv[:at] + argv[at + 2:]
    numbers = [a for a in argv[1:] if not a.startswith("-")]
    seconds = float(numbers[0]) if numbers else 15.0
    rounds = int(numbers[1]) if len(numbers) > 1 else 3
    clients = int(numbers[2]) if len(numbers) > 2 else 16
    sides = run(seconds, rounds, clients, profile)
    report(sides, clients)


if __name__ == "__main__":
    main(sys.argv)
