"""The CLI's pure parts: option parsers and the error line; and how a
command line is parsed (run against an address where nothing listens, so a line the parser
accepts ends in "cannot reach", exit 1, and one it refuses in a usage error, exit 2)."""
from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

import pytest
import requests

from cli.client import describe_error
from cli.output import size
from cli import commands, nodes, resources, scaling  # noqa: F401 - the commands
from cli.app import run_cli
from cli.parse import ParseError, duration, label_edits, manifest, pairs, ports, since


def test_pairs_split_on_the_first_equals_and_keep_the_last_repeat():
    assert pairs(["A=1", "B=x=y", "A=2", "EMPTY="], "env") == {"A": "2", "B": "x=y", "EMPTY": ""}


@pytest.mark.parametrize("bad", ["A", "=1", ""])
def test_pairs_refuse_what_is_not_key_value(bad):
    with pytest.raises(ParseError, match="KEY=VALUE"):
        pairs([bad], "env")


def test_label_edits_set_with_equals_and_remove_with_a_trailing_dash_as_kubectl():
    assert label_edits(["disk=ssd", "zone-", "empty=", "tier=a=b", "x=y-"]) == {
        "disk": "ssd", "zone": None, "empty": "", "tier": "a=b", "x": "y-"}
    # the last word on a key wins, as with repeated KEY=VALUE options
    assert label_edits(["disk=ssd", "disk-"]) == {"disk": None}


@pytest.mark.parametrize("bad", ["disk", "-", "=ssd", "", "disk+"])
def test_label_edits_refuse_what_neither_sets_nor_removes(bad):
    with pytest.raises(ParseError, match="KEY=VALUE .set. nor KEY- .remove."):
        label_edits([bad])


@pytest.mark.parametrize("value,seconds", [
    ("10m", 600), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("250ms", 0.25),
    ("600", 600), ("2.5", 2.5), (" 10m ", 600),
])
def test_durations_are_go_durations_or_plain_seconds(value, seconds):
    assert duration(value, "deadline") == pytest.approx(seconds)


@pytest.mark.parametrize("bad,why", [
    ("", "not a duration"), ("ten minutes", "not a duration"), ("10x", "not a duration"),
    ("-5m", "not a duration"), ("m", "not a duration"), ("1h30", "not a duration"),
    ("0", "more than zero"), ("0s", "more than zero"),
])
def test_durations_refuse_the_rest_naming_the_option(bad, why):
    with pytest.raises(ParseError, match=f"^deadline .*{why}"):
        duration(bad, "deadline")


def test_ports_take_dockers_forms_without_a_host_address():
    assert ports(["80", "53/udp", "8080:81", "9000:9000/tcp"]) == {
        "80/tcp": None, "53/udp": None, "81/tcp": 8080, "9000/tcp": 9000}


@pytest.mark.parametrize("bad", ["0.0.0.0:80:80", "http", "0", "70000", "80/icmp", "x:80",
                                 "0:80", "99999:80"])
def test_ports_refuse_the_rest(bad):
    with pytest.raises(ParseError):
        ports([bad])


def test_manifest_reads_yaml_and_json_and_needs_a_name():
    assert manifest("name: web\nimage: x\nreplicas: 2\n", "web.yaml")["replicas"] == 2
    assert manifest('{"name": "web", "image": "x"}', "web.json")["image"] == "x"
    with pytest.raises(ParseError, match="needs a name"):
        manifest("image: x\n", "web.yaml")
    with pytest.raises(ParseError, match="one mapping"):
        manifest("- a\n- b\n", "web.yaml")
    with pytest.raises(ParseError, match="not valid JSON"):
        manifest("{", "web.json")


@pytest.mark.parametrize("count,shown", [
    (0, "0B"), (1000, "1000B"), (1536, "1.5KiB"), (1000 * 1024, "1000KiB"),
    (64 * 2**20, "64MiB"), (int(10.5 * 2**20), "10.5MiB"), (int(3.8 * 2**30), "3.8GiB"),
    (3 * 2**40, "3TiB"), (None, ""),
])
def test_sizes_read_as_docker_stats_shows_them(count, shown):
    assert size(count) == shown


def _response(status: int, body: bytes) -> requests.Response:
    r = requests.Response()
    r.status_code, r._content = status, body
    return r


def test_errors_read_as_one_line():
    assert describe_error(_response(404, b'{"error": "not_found", "detail": "no container x"}')) \
        == "not_found: no container x"
    assert "HARBORMASTER_TOKEN" in describe_error(_response(401, b'{"error": "unauthorized"}'))
    assert describe_error(_response(502, b"<html>bad gateway</html>")) == \
        "HTTP 502: <html>bad gateway</html>"


def exit_of(monkeypatch, capsys, *argv: str) -> tuple[int, str]:
    """run_cli's exit code and stderr for ``harbormaster <argv>`` against 127.0.0.1:9."""
    monkeypatch.setattr(sys, "argv", ["harbormaster", "--url", "http://127.0.0.1:9",
                                      "--token", "x", *argv])
    with pytest.raises(SystemExit) as ended:
        run_cli()
    return ended.value.code, capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ("--json", "ps"), ("ps", "--json"), ("ps", "-a", "--json"), ("deploy", "ls", "--json"),
    ("deploy", "--json", "ls"), ("events", "--json", "--kind", "die"),
    ("scaling", "decisions", "--json"), ("tokens", "ls", "--json"), ("job", "3f2a", "--json"),
    ("node", "ls", "--json"), ("node", "--json", "ls"), ("--json", "node", "get", "n2"),
    ("node", "label", "n2", "disk=ssd", "zone-", "--json"), ("node", "pause", "n2", "--json"),
    ("node", "drain", "n2", "--deadline", "10m", "--json"), ("node", "rm", "n2", "--json"),
    ("deploy", "rebalance", "web", "--json"),
])
def test_json_is_accepted_anywhere_on_the_line(monkeypatch, capsys, argv):
    code, err = exit_of(monkeypatch, capsys, *argv)
    assert code == 1 and "cannot reach Harbormaster" in err, (code, err)


NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
NEW_YEAR = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("value,expected", [
    ("5m", NOW - timedelta(minutes=5)),                     # Go durations, back from now
    ("1h30m", NOW - timedelta(hours=1, minutes=30)),
    ("1.5h", NOW - timedelta(hours=1.5)),
    ("90s", NOW - timedelta(seconds=90)),
    ("250ms", NOW - timedelta(milliseconds=250)),
    ("2026-01-01T00:00:00Z", NEW_YEAR),                     # RFC 3339
    ("2026-01-01T01:00:00+01:00", NEW_YEAR),
    ("2026-01-01T00:00:00.500000Z", NEW_YEAR + timedelta(milliseconds=500)),
    ("1767225600", NEW_YEAR),                               # Unix seconds, as docker
    ("1767225600.25", NEW_YEAR + timedelta(milliseconds=250)),
])
def test_since_takes_durations_timestamps_and_unix_seconds(value, expected):
    assert since(value, NOW) == expected


def test_since_without_a_zone_is_local_time_as_in_docker():
    assert since("2026-01-01T00:00:00", NOW) == datetime(2026, 1, 1).astimezone()
    assert since("2026-01-01", NOW) == datetime(2026, 1, 1).astimezone()


@pytest.mark.parametrize("bad", ["", "5 minutes", "yesterday", "-5m", "5x", "m", "1h30",
                                 "2026-13-01"])
def test_since_refuses_the_rest_with_examples(bad):
    with pytest.raises(ParseError, match="10m"):
        since(bad, NOW)


@pytest.mark.parametrize("argv,why", [
    (("node", "label", "n2", "disk"), "label 'disk' is neither KEY=VALUE (set) nor KEY-"),
    (("node", "drain", "n2", "--deadline", "soon"), "deadline 'soon': not a duration"),
])
def test_node_arguments_are_refused_before_any_request(monkeypatch, capsys, argv, why):
    code, err = exit_of(monkeypatch, capsys, *argv)
    assert code == 1 and err.startswith(f"harbormaster: {why}"), (code, err)
    assert "cannot reach" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("argv", [
    ("exec", "-it", "web-1", "sh"), ("exec", "-i", "web-1", "sh"),
    ("exec", "--tty", "web-1", "sh"), ("run", "-it", "busybox", "sh"),
    ("run", "-itd", "busybox", "sh"),
])
def test_an_interactive_session_is_refused_as_a_usage_error(monkeypatch, capsys, argv):
    code, err = exit_of(monkeypatch, capsys, *argv)
    assert code == 2 and "interactive session (-i/-t) is not offered yet" in err, (code, err)
    assert "Usage: harbormaster" in err, err


def test_an_unknown_option_before_the_image_is_a_usage_error(monkeypatch, capsys):
    code, err = exit_of(monkeypatch, capsys, "run", "--rm", "busybox")
    assert code == 2 and "--rm" in err, (code, err)


@pytest.mark.parametrize("argv", [
    ("exec", "web-1", "grep", "-i", "x", "/etc/passwd"),   # -i is grep's, after the container
    ("exec", "web-1", "ls", "-h"),                         # and -h is not our help
    ("exec", "web-1", "--", "ls", "-l"),
    ("run", "-d", "--name", "web-1", "-p", "80", "busybox", "sh", "-c", "true"),
])
def test_what_follows_the_container_is_its_command(monkeypatch, capsys, argv):
    code, err = exit_of(monkeypatch, capsys, *argv)
    assert code == 1 and "cannot reach Harbormaster" in err, (code, err)
