"""Settings: defaults < file < environment < command line, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gureum.config import load_settings
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


@pytest.mark.parametrize("text,needle", [
    ("[nope]\nx = 1\n", "unknown section [nope]"),
    ("[server]\nporrt = 1\n", "unknown setting 'porrt'"),
    ("[server]\nport = 'many'\n", "expected int"),
    ("[server\n", "not valid TOML"),
])
def test_bad_config_is_explained(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=None) as err:
        load_settings(cfg, environ={})
    assert needle in err.value.message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_bool_from_environment() -> None:
    s = load_settings(None, environ={"GUREUM_DATABASE__ECHO": "yes"})
    assert s.database.echo is True
    with pytest.raises(ConfigError):
        load_settings(None, environ={"GUREUM_DATABASE__ECHO": "perhaps"})
