"""The pure parts of live streams (core.streams, core.eventfeed): Docker's log lines read
apart, frames split into lines per stream, Redis entries, SSE text, end reasons; the event
cursor's resume rule and a web process's feed of newest events."""
from __future__ import annotations

import pytest

from core import eventfeed, streams
from core.eventfeed import Feed
from core.streams import LineSplitter, LogLine


def test_a_docker_line_is_its_timestamp_and_its_text():
    line = streams.parse_line("2026-11-30T12:00:01.123456789Z hello world", "stdout")
    assert line == LogLine("stdout", "hello world", "2026-11-30T12:00:01.123456789Z")
    assert streams.stamp_seconds(line.time) == pytest.approx(1796040001.123456)
    # no timestamp: the whole text; a text that only looks like one is kept whole too
    assert streams.parse_line("plain text", "stderr") == LogLine("stderr", "plain text", None)
    assert streams.parse_line("2026-13-45Tnonsense x", "stdout").time is None
    assert streams.parse_line("2026-11-30T12:00:01Z ", "stdout").text == ""


def test_frames_become_whole_lines_per_stream():
    split = LineSplitter()
    assert split.feed("stdout", b"T a\nT b") == [LogLine("stdout", "T a", None)]
    # a stderr frame between the two halves of a stdout line does not mix with it
    assert split.feed("stderr", b"T e\n") == [LogLine("stderr", "T e", None)]
    assert split.feed("stdout", b"c\n") == [LogLine("stdout", "T bc", None)]
    assert split.feed("stdout", b"no newline") == []
    assert split.flush() == [LogLine("stdout", "no newline", None)]
    assert split.flush() == []
    # bytes that are not UTF-8 are replaced, not fatal
    assert split.feed("stdout", b"\xff\n")[0].text == "\ufffd"


def test_entries_go_through_redis_and_back():
    fields = streams.line_fields(LogLine("stderr", "oops", "2026-11-30T12:00:00Z"), 7)
    raw = {k.encode(): str(v).encode() for k, v in fields.items()}
    assert streams.decode_fields(raw) == {"kind": "line", "stream": "stderr", "line": "oops",
                                          "time": "2026-11-30T12:00:00Z", "number": 7}
    end = streams.decode_fields({b"k": b"end", b"r": b"the container exited", b"c": b"3"})
    assert end == {"kind": "end", "reason": "the container exited", "exit_code": 3}
    assert streams.decode_fields({b"k": b"start"}) == {"kind": "start"}


def test_a_follow_ask_survives_its_encoding():
    ask = streams.FollowAsk("web-0.1", "abc", tail=5, since=12.5, instance="web-0.1")
    assert streams.FollowAsk.decode(ask.encode()) == ask
    assert streams.follow_id_of(streams.lease_key("n2", "f00")) == "f00"
    assert streams.lease_key("n2", "f00").startswith(streams.lease_pattern("n2")[:-1])


@pytest.mark.parametrize("state,reason,code", [
    (None, "the container was removed", None),
    ({"Status": "exited", "ExitCode": 3}, "the container exited with code 3", 3),
    ({"Status": "exited", "ExitCode": 137, "OOMKilled": True},
     "the container was OOM killed (exit code 137)", 137),
    ({"Status": "running"}, "docker closed the log stream", None),
    ({"Status": "paused"}, "the container is paused", None),
])
def test_why_a_follow_ended(state, reason, code):
    assert streams.end_reason(state) == (reason, code)


def test_server_sent_events_text():
    assert streams.sse({"a": 1}, event="stdout") == 'event: stdout\ndata: {"a":1}\n\n'
    assert streams.sse("two\nlines", event_id="9") == "id: 9\ndata: two\ndata: lines\n\n"
    assert streams.sse_comment("heartbeat") == ": heartbeat\n\n"
    assert streams.plain_line("x", "T", True, "web-0.1") == "web-0.1 | T x\n"
    assert streams.plain_line("x", "T", False, None) == "x\n"


def test_resuming_is_refused_only_when_events_after_the_cursor_are_gone():
    assert eventfeed.resume_problem(10, pruned_through=0, newest=20) is None
    assert eventfeed.resume_problem(10, pruned_through=10, newest=20) is None
    assert "older than the retention" in eventfeed.resume_problem(9, 10, 20)
    assert "never given" in eventfeed.resume_problem(21, 0, 20)
    assert eventfeed.resume_problem(20, 0, 20) is None


def rows(*cursors):
    return [{"cursor": c} for c in cursors]


def test_the_feed_holds_every_event_after_its_base():
    feed = Feed(base=100, capacity=3)
    assert feed.last == 100 and feed.after(100) == []
    assert feed.after(99) is None          # older than the feed: the table
    feed.extend(rows(101, 105, 106))       # cursors may skip (rolled back transactions)
    assert [r["cursor"] for r in feed.after(100)] == [101, 105, 106]
    assert [r["cursor"] for r in feed.after(103)] == [105, 106]
    assert feed.after(106) == []
    feed.extend(rows(107))                 # over capacity: the oldest goes, base moves up
    assert feed.base == 101 and feed.after(100) is None
    assert [r["cursor"] for r in feed.after(101)] == [105, 106, 107]
    with pytest.raises(ValueError):
        feed.extend(rows(107))             # never twice, never backwards


def test_a_stream_filters_on_what_is_set():
    row = {"deployment": "web", "kind": "die", "container": "web-0.1"}
    assert eventfeed.matches(row, None, None, None)
    assert eventfeed.matches(row, "web", "die", "web-0.1")
    assert not eventfeed.matches(row, "api", None, None)
    assert not eventfeed.matches(row, None, "start", None)
