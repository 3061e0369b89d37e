"""The CLI's pure parts: option parsers and the error line; and how a
command line is parsed (run against an address where nothing listens, so a line the parser
accepts ends in "cannot reach", exit 1, and one it refuses in a usage error, exit 2)."""
from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

import pytest
import requests

from cli.client import describe_error
from cli import commands, resources, scaling  # noqa: F401 - the commands
from cli.app import run_cli
from cli.parse import ParseError, manifest, pairs, ports, since


def test_pairs_split_on_the_first_equals_and_keep_the_last_repeat():
    assert pairs(["A=1", "B=x=y", "A=2", "EMPTY="], "env") == {"A": "2", "B": "x=y", "EMPTY": ""}


@pytest.mark.parametrize("bad", ["A", "=1", ""])
def test_pairs_refuse_what_is_not_key_value(bad):
    with pytest.raises(ParseError, match="KEY=VALUE"):
        pairs([bad], "env")


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
