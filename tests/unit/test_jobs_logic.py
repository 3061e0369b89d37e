"""Pure parts of jobs and policy: result capping, widening options, configuration."""
from __future__ import annotations

import ipaddress

from db.jobs import cap_result
from web.policy import widening_options
from web.schemas import MountSpec, Security
import config


def test_small_results_are_kept_whole():
    assert cap_result({"a": 1}, 1000) == {"a": 1}
    assert cap_result(None, 10) is None


def test_large_results_are_cut_and_marked():
    out = cap_result({"logs": "x" * 10000}, 1000)
    assert out["truncated"] is True and out["size"] > 10000 and len(out["preview"]) <= 1000


def test_widening_options_are_named_by_field():
    found = widening_options(
        Security.model_validate({"privileged": True, "cap_add": ["SYS_ADMIN"],
                                 "pid_mode": "host"}),
        [MountSpec.model_validate({"type": "bind", "source": "/etc", "target": "/x"}),
         MountSpec.model_validate({"type": "volume", "source": "v", "target": "/v"})])
    assert found == {"security.privileged": "privileged", "security.cap_add": "extra_capabilities",
                     "security.pid_mode": "host_namespaces", "mounts.0.type": "bind_mounts"}
    assert widening_options(Security(), [MountSpec(type="tmpfs", target="/t")]) == {}


def test_config_from_environment():
    cfg = config.from_env({"HARBORMASTER_WEB_PORT": "9000", "HARBORMASTER_ALLOW_PRIVILEGED": "yes",
                           "HARBORMASTER_METRICS_NETWORKS": "10.0.0.0/8, ::1",
                           "HARBORMASTER_BROKER_HEARTBEAT_TIMEOUT_MS": "5000"})
    assert cfg.web_port == 9000 and cfg.allow_privileged and not cfg.allow_bind_mounts
    assert cfg.metrics_networks == (ipaddress.ip_network("10.0.0.0/8"),
                                    ipaddress.ip_network("::1/128"))
    assert cfg.redelivery_window == 5.0
    assert config.from_env({}).web_host == "127.0.0.1"
