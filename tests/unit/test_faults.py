"""The fault check's reading of logs (tests/support/faults.py), on recorded log text: what
is a fault, what a declaration covers, how exits are counted."""
from __future__ import annotations

from tests.support import faults

WORKER = """\
[2026-11-30 12:41:17,140] [PID 1] [MainThread] [dramatiq.MainProcess] [INFO] booting
[2026-11-30 12:41:19,640] [PID 2] [Thread-8] [dramatiq.worker.WorkerThread] [WARNING] an ERROR word in a warning
[2026-11-30 12:48:16,764] [PID 2] [Thread-7] [dramatiq.worker.WorkerThread] [ERROR] Failed to process message a() with unhandled exception.
Traceback (most recent call last):
  File "a.py", line 1, in f
    g()
KeyError: 'x'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "b.py", line 2, in g
    ^^^^
RuntimeError: boom
[2026-11-30 12:48:17,000] [PID 2] [Thread-3] [dramatiq.worker.ConsumerThread(default)] [CRITICAL] Consumer encountered a connection error: refused
"""
WEB = """\
[2026-11-30 12:41:16 +0000] [30151] [INFO] Starting gunicorn 27.0.1
2026-11-30 12:46:12,329 web ERROR unhandled error
Traceback (most recent call last):
  File "c.py", line 3, in h
psycopg.errors.UniqueViolation: duplicate key value violates unique constraint "x"
DETAIL:  Key (a)=(b) already exists.
2026-11-30 12:46:13,000 web WARNING error connecting: FATAL: the database system is shutting down
Traceback (most recent call last):
  File "d.py", line 4, in main
SystemError: printed, not logged
"""
SUPERVISORD = """\
2026-11-30 12:41:16,410 INFO spawned: 'worker' with pid 30149
2026-11-30 12:48:10,762 WARN exited: worker (terminated by SIGKILL; not expected)
2026-11-30 12:48:20,000 INFO stopped: worker (terminated by SIGTERM)
2026-11-30 12:48:52,951 WARN exited: scheduler (exit status 3; not expected)
"""


def ledger(tmp_path) -> faults.Ledger:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "worker.log").write_text(WORKER)
    (logs / "web.log").write_text(WEB)
    (logs / "supervisord.log").write_text(SUPERVISORD)
    return faults.Ledger(logs)


def test_errors_with_their_tracebacks_and_bare_tracebacks_are_faults(tmp_path):
    found = faults.check(ledger(tmp_path))
    texts = [f.text for f in found if f.where.startswith("worker.log")] + \
        [f.text for f in found if f.where.startswith("web.log")]
    assert len(texts) == 4, texts
    assert texts[0].endswith("RuntimeError: boom") and "KeyError: 'x'" in texts[0]
    assert "[CRITICAL] Consumer encountered a connection error" in texts[1]
    assert texts[2].startswith("2026-11-30 12:46:12,329 web ERROR unhandled error")
    assert texts[2].endswith('unique constraint "x"')
    assert texts[3].startswith("Traceback") and texts[3].endswith("SystemError: printed, not logged")
    assert not [t for t in texts if "WARNING" in t.splitlines()[0]]


def test_exits_are_faults_until_declared_and_requested_stops_never(tmp_path):
    plain = ledger(tmp_path)
    exits = [f for f in faults.check(plain) if f.where == "supervisord.log"]
    assert [f.program for f in exits] == ["worker", "scheduler"]
    plain.expect_restart("worker")
    exits = [f for f in faults.check(plain) if f.where == "supervisord.log"]
    assert [f.program for f in exits] == ["scheduler"]


def test_a_declaration_covers_its_program_from_the_moment_it_is_made(tmp_path):
    declared = ledger(tmp_path)
    declared.expect_log("worker", r"RuntimeError: boom")  # logged before: not covered
    assert any("RuntimeError: boom" in f.text for f in faults.check(declared))
    with open(declared.logs / "worker.log", "a") as log:
        log.write(WORKER)  # the same failure again, after the declaration
    again = [f for f in faults.check(declared) if "RuntimeError: boom" in f.text]
    assert [f.where for f in again] == ["worker.log:3"]  # the one after it is covered
    declared.expect_log("web", r"Consumer encountered")  # another program's: no effect
    assert sum("Consumer encountered" in f.text for f in faults.check(declared)) == 2


def test_extra_processes_logs_count_as_their_program(tmp_path):
    declared = ledger(tmp_path)
    (declared.logs / "web-open.log").write_text(WEB)
    (declared.logs / "webhook.log").write_text(WEB)  # not a web process's log
    wheres = {f.where.split(":")[0] for f in faults.check(declared)}
    assert "web-open.log" in wheres and "webhook.log" not in wheres
