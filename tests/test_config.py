"""Configuration: TOML plus environment, validated with errors that name the key and the fix."""
from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from bot.config import Config, ConfigError, load_config
from tests.shared import REPO

EXAMPLE = REPO / "config" / "dsarbot.example.toml"


def test_example_documents_every_key() -> None:
    documented = tomllib.loads(EXAMPLE.read_text())
    for section in dataclasses.fields(Config):
        assert section.name in documented, f"[{section.name}] missing from the example"
        for key in dataclasses.fields(getattr(Config(), section.name)):
            assert key.name in documented[section.name], f"[{section.name}] {key.name} missing from the example"


def test_example_loads(tmp_path: Path) -> None:
    config = load_config(EXAMPLE, environ={})
    assert config.jurisdiction.country == "FR" and config.reminders.offsets_days == [7, 3, 1]


def test_environment_overrides_and_types(tmp_path: Path) -> None:
    config = load_config(EXAMPLE, environ={"DSARBOT_SERVICE__PORT": "9090", "DSARBOT_MAILBOX__USE_IDLE": "no",
                                           "DSARBOT_REMINDERS__OFFSETS_DAYS": "10, 2",
                                           "DSARBOT_ZENDESK__API_TOKEN": "tok", "OTHER": "x"})
    assert config.service.port == 9090 and config.mailbox.use_idle is False
    assert config.reminders.offsets_days == [10, 2] and config.zendesk.api_token == "tok"


@pytest.mark.parametrize("environ,message", [
    ({"DSARBOT_SERVICE__PORT": "eighty"}, r"\[service\] port: expected int"),
    ({"DSARBOT_SERVICE__PROT": "80"}, r"\[service\] has no key 'prot'"),
    ({"DSARBOT_NOPE__X": "1"}, r"no section \[nope\]"),
    ({"DSARBOT_JURISDICTION__COUNTRY": "XX"}, r"\[jurisdiction\].*'XX'"),
    ({"DSARBOT_JURISDICTION__SUBDIVISION": "Narnia"}, r"Narnia"),
    ({"DSARBOT_HELPDESK__KIND": "zendesk"}, r"DSARBOT_ZENDESK__API_TOKEN"),
    ({"DSARBOT_SLACK__ENABLED": "true"}, r"DSARBOT_SLACK__BOT_TOKEN"),
    ({"DSARBOT_VERIFICATION__CODE_DIGITS": "4"}, r"at least 6"),
])
def test_errors_name_the_key_and_the_fix(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, environ=environ)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[service\nport = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, environ={})
    with pytest.raises(ConfigError, match="copy config/dsarbot.example.toml"):
        load_config(tmp_path / "missing.toml", environ={})


def test_secrets_are_not_in_the_example() -> None:
    text = EXAMPLE.read_text()
    for key in ("api_token", "password", "bot_token", "signing_secret", "api_key", "secret_key"):
        assert re.search(rf'^{key}\s*=\s*""', text, re.M), f"{key} must be empty in the example"


def test_the_config_file_may_be_named_by_the_environment(monkeypatch) -> None:
    """Containers start `dsarbot serve` and say where the file is with DSARBOT_CONFIG."""
    from bot.cli import build_parser

    monkeypatch.setenv("DSARBOT_CONFIG", str(EXAMPLE))
    assert build_parser().parse_args(["serve"]).config == str(EXAMPLE)
    assert build_parser().parse_args(["--config", "other.toml", "serve"]).config == "other.toml"
    monkeypatch.delenv("DSARBOT_CONFIG")
    assert build_parser().parse_args(["serve"]).config is None
