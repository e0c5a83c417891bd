"""Settings: defaults < file < environment < command line, checked, with clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gureum.config import ConductorSettings, Settings, load_settings
from gureum.errors import ConfigError


def test_layers_override_in_order(tmp_path: Path) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text("[server]\nport = 9000\nbind = '0.0.0.0'\n[identity]\ntoken_expiration = 60\n")
    s = load_settings(cfg, {"server": {"port": 9100}},
                      environ={"GUREUM_IDENTITY__TOKEN_EXPIRATION": "120",
                               "GUREUM_DATA_DIR": str(tmp_path / "d")})
    assert s.server.port == 9100
    assert s.server.bind == "0.0.0.0"
    assert s.identity.token_expiration == 120
    assert s.data_dir == tmp_path / "d"
    assert s.public_url == "http://127.0.0.1:9100"
    assert s.database_url == f"sqlite:///{tmp_path / 'd' / 'gureum.db'}"


def test_defaults_are_kept() -> None:
    s = load_settings(None, environ={})
    assert s == Settings(data_dir=s.data_dir)
    assert (s.server.port, s.server.threads, s.identity.password_hash_rounds,
            s.compute.weigher, s.quota.cores) == (8800, 16, 12, "spread", 20)


@pytest.mark.parametrize("text,needle", [
    ("[nope]\nx = 1\n", "unknown section [nope]"),
    ("[server]\nporrt = 1\n", "[server] porrt: unknown setting (known in [server]: bind, port"),
    ("[server]\nport = 'many'\n", "[server] port: 'many' is not allowed (Input should be a "
                                  "valid integer); allowed: an integer from 1 to 65535"),
    ("[server]\nport = 70000\n", "[server] port: 70000 is not allowed (Input should be less "
                                 "than or equal to 65535); allowed: an integer from 1 to 65535"),
    ("[server]\nport = true\n", "[server] port: True is not allowed"),
    ("[compute]\nweigher = 'heaviest'\n", "allowed: one of 'spread', 'pack'"),
    ("[compute]\nreport_interval = 0\n", "allowed: a number > 0"),
    ("[compute]\ndriver = 'xen'\n", "[compute] driver: 'xen' is not allowed"),
    ("[identity]\npassword_hash_rounds = 3\n", "allowed: an integer from 4 to 31"),
    ("[quota]\ncores = -2\n", "allowed: an integer >= -1"),
    ("[database]\necho = 'yes'\n", "allowed: true or false"),
    ("[server]\nthreads = 2.5\n", "[server] threads: 2.5 is not allowed"),
    ("[server]\nbind = 127\n", "allowed: a string"),
    ("server = 1\n", "[server] must be a table"),
    ("[server\n", "not valid TOML"),
])
def test_bad_config_is_explained(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, environ={})
    assert needle in err.value.message
    assert err.value.message.startswith(f"config file {cfg}")
    assert "\n" not in err.value.message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_environment_values_are_text_converted_and_checked() -> None:
    s = load_settings(None, environ={"GUREUM_DATABASE__ECHO": "yes",
                                     "GUREUM_COMPUTE__REPORT_INTERVAL": "2.5",
                                     "GUREUM_E2E_CLI": "exec"})  # not a setting: ignored
    assert s.database.echo is True
    assert s.compute.report_interval == 2.5
    with pytest.raises(ConfigError) as err:
        load_settings(None, environ={"GUREUM_DATABASE__ECHO": "perhaps"})
    assert err.value.message.startswith("environment variable GUREUM_DATABASE__ECHO: "
                                        "'perhaps' is not allowed")
    with pytest.raises(ConfigError, match="environment variable GUREUM_SERVER__PROT: "
                                          "unknown setting"):
        load_settings(None, environ={"GUREUM_SERVER__PROT": "1"})
    with pytest.raises(ConfigError, match=r"environment: unknown section \[servr\]"):
        load_settings(None, environ={"GUREUM_SERVR__PORT": "1"})


def test_command_line_values_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"command line: \[server\] port: 0 is not allowed"):
        load_settings(None, {"server": {"port": 0}}, environ={})


def test_settings_built_in_code_are_checked_too() -> None:
    s = load_settings(None, environ={})
    assert dataclasses.replace(s, conductor=ConductorSettings(crash_after="x")).conductor
    with pytest.raises(ValueError):
        dataclasses.replace(s.server, port=-1)
