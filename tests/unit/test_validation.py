"""Parsing of the formats users type: sizes, CPUs, durations, image references, ports."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import validation
from web.schemas import ContainerCreate, Resources, Security


@pytest.mark.parametrize("text,expected", [
    ("256m", 256 * 1024 ** 2), ("1g", 1024 ** 3), ("1G", 1024 ** 3), ("512k", 512 * 1024),
    ("100", 100), ("1.5g", int(1.5 * 1024 ** 3)), ("64mb", 64 * 1024 ** 2), ("64MiB", 64 * 1024 ** 2),
    (1048576, 1048576)])
def test_sizes(text, expected):
    assert validation.parse_size(text) == expected


@pytest.mark.parametrize("text", ["12xb", "", "m", "-5m", "1gg", True, None, 1.5, -1])
def test_bad_sizes(text):
    with pytest.raises(ValueError):
        validation.parse_size(text)


@given(st.integers(min_value=0, max_value=2 ** 40), st.sampled_from(["", "k", "m", "g"]))
def test_size_units_multiply(n, unit):
    assert validation.parse_size(f"{n}{unit}") == n * validation.SIZE_UNITS[unit]


@pytest.mark.parametrize("value,expected", [("0.5", 0.5), (0.25, 0.25), ("2", 2.0), (1, 1.0)])
def test_cpus(value, expected):
    assert validation.parse_cpus(value) == expected


@pytest.mark.parametrize("value", ["lots", "0", 0, -1, "2000", True, None])
def test_bad_cpus(value):
    with pytest.raises(ValueError):
        validation.parse_cpus(value)


@pytest.mark.parametrize("value,expected", [(30, 30.0), ("30", 30.0), ("30s", 30.0),
                                            ("5m", 300.0), ("250ms", 0.25), ("1h", 3600.0), ("2d", 172800.0)])
def test_durations(value, expected):
    assert validation.parse_duration(value) == expected


@pytest.mark.parametrize("value", ["soon", "-1", "5w", -3, True])
def test_bad_durations(value):
    with pytest.raises(ValueError):
        validation.parse_duration(value)


@pytest.mark.parametrize("ref", [
    "nginx", "nginx:alpine", "library/nginx:1.27", "registry.local:5000/team/app:v2",
    "harbormaster/busybox-httpd", "localhost:5000/a_b/c-d.e:latest",
    "nginx@sha256:" + "a" * 64, "ghcr.io/org/app:1.0.0-rc.1"])
def test_image_refs(ref):
    assert validation.check_image(ref) == ref


@pytest.mark.parametrize("ref", ["UPPER/Case", "nginx::alpine", "", "a b", "nginx:", "-x",
                                 "x/", "nginx@sha256:short", "a" * 300])
def test_bad_image_refs(ref):
    with pytest.raises(ValueError):
        validation.check_image(ref)


@pytest.mark.parametrize("spec,expected", [("80", "80/tcp"), ("80/tcp", "80/tcp"),
                                           ("53/udp", "53/udp"), ("65535/tcp", "65535/tcp")])
def test_ports(spec, expected):
    assert validation.normalise_port(spec) == expected


@pytest.mark.parametrize("spec", ["0", "65536", "99999/tcp", "80/http", "eighty", "-1"])
def test_bad_ports(spec):
    with pytest.raises(ValueError):
        validation.normalise_port(spec)


def test_container_create_defaults_are_hardened():
    body = ContainerCreate.model_validate({"image": "nginx"})
    assert body.security.cap_drop == ["ALL"] and body.security.no_new_privileges
    assert not body.security.privileged and body.restart_policy == "no"
    assert body.security.effective_cap_add() == sorted(
        ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETGID",
         "SETUID"])


def test_unknown_fields_and_reserved_labels_are_refused():
    with pytest.raises(ValidationError) as err:
        ContainerCreate.model_validate({"image": "nginx", "surprise": 1})
    assert err.value.errors()[0]["loc"] == ("surprise",)
    with pytest.raises(ValidationError):
        ContainerCreate.model_validate({"image": "nginx", "labels": {"harbormaster.kind": "x"}})
    with pytest.raises(ValidationError):
        ContainerCreate.model_validate({"image": "nginx", "env": {"1BAD": "x"}})


def test_resources_normalise_to_numbers():
    res = Resources.model_validate({"cpus": "0.5", "memory": "256m", "pids_limit": 10})
    assert res.normalised() == {"cpus": 0.5, "memory": 256 * 1024 ** 2, "pids_limit": 10}
    with pytest.raises(ValidationError):
        Resources.model_validate({"memory": "1k"})  # below Docker's minimum


def test_capability_names_are_normalised():
    sec = Security.model_validate({"cap_add": ["cap_net_admin", "SYS_TIME"]})
    assert sec.cap_add == ["NET_ADMIN", "SYS_TIME"]
    assert sec.extra_capabilities() == ["NET_ADMIN", "SYS_TIME"]
    assert Security.model_validate({"cap_add": ["CHOWN"]}).extra_capabilities() == []


def test_bounds_unset_mean_zero_to_the_cap():
    assert validation.bounds_problem(0, None, None, 1000) is None
    assert validation.bounds_problem(1000, None, None, 1000) is None
    assert "0..1000" in validation.bounds_problem(1001, None, None, 1000)
    assert "1..3" in validation.bounds_problem(4, 1, 3, 1000)
    assert "1..3" in validation.bounds_problem(0, 1, 3, 1000)
    assert "above max_replicas" in validation.bounds_problem(2, 3, 2, 1000)
    assert validation.check_replica_count(1000, 1000) == 1000
    with pytest.raises(ValueError, match="cap of 1000"):
        validation.check_replica_count(1001, 1000)
