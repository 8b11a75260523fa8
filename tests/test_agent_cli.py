"""`dsarbot agent add`: a hash (never the password) in [desk.agents], and the desk accepts the login."""
from __future__ import annotations

import io
import tomllib

import pytest
from werkzeug.security import check_password_hash

from bot.agent_cli import AgentFileError, upsert_agent
from bot.cli import main
from bot.config import ConfigError, load_config

PASSWORD = "a long enough passphrase"


def run(monkeypatch, capsys, *argv: str, stdin: str = PASSWORD + "\n") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_prints_the_toml_line(monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "agent", "add", "Alice", "--password-stdin")
    assert code == 0
    agents = tomllib.loads(out)["desk"]["agents"]
    assert list(agents) == ["alice"]
    assert agents["alice"].startswith("scrypt:") and PASSWORD not in out
    assert check_password_hash(agents["alice"], PASSWORD)


def test_writes_into_a_config_file_and_the_config_loads(monkeypatch, capsys, tmp_path):
    path = tmp_path / "dsarbot.toml"
    path.write_text('[service]\nshop_name = "Shop"\n\n[desk]\nsoon_days = 5\n\n[slack]\nenabled = false\n')
    assert run(monkeypatch, capsys, "agent", "add", "alice", "--password-stdin", "--write", str(path))[0] == 0
    assert run(monkeypatch, capsys, "agent", "add", "bob", "--password-stdin", "--write", str(path))[0] == 0
    config = load_config(path, environ={})
    assert sorted(config.desk.agents) == ["alice", "bob"] and config.desk.soon_days == 5
    assert config.service.shop_name == "Shop" and config.slack.enabled is False
    old = config.desk.agents["alice"]
    run(monkeypatch, capsys, "agent", "add", "alice", "--password-stdin", "--write", str(path),
        stdin="another long passphrase\n")
    again = load_config(path, environ={})
    assert again.desk.agents["alice"] != old and check_password_hash(again.desk.agents["alice"],
                                                                       "another long passphrase")
    assert path.read_text().count("alice =") == 1


def test_creates_the_file_when_missing(monkeypatch, capsys, tmp_path):
    path = tmp_path / "new.toml"
    assert run(monkeypatch, capsys, "agent", "add", "carol", "--password-stdin", "--write", str(path))[0] == 0
    assert list(load_config(path, environ={}).desk.agents) == ["carol"]
    assert path.stat().st_mode & 0o077 == 0  # a new file is private


@pytest.mark.parametrize("argv, stdin, message", [
    (["agent", "add", "al ice", "--password-stdin"], PASSWORD, "a login is"),
    (["agent", "add", "x" * 65, "--password-stdin"], PASSWORD, "a login is"),
    (["agent", "add", "alice", "--password-stdin"], "short\n", "at least 12"),
    (["agent", "add", "alice", "--password-stdin"], "", "at least 12"),
])
def test_refuses_bad_logins_and_short_passwords(monkeypatch, capsys, argv, stdin, message):
    code, out, err = run(monkeypatch, capsys, *argv, stdin=stdin)
    assert code == 2 and message in err and out == ""


def test_inline_agents_are_not_rewritten():
    with pytest.raises(AgentFileError, match="by hand"):
        upsert_agent('[desk]\nagents = { bob = "pbkdf2:x" }\n', "alice", "scrypt:y")


def test_prompts_twice_without_stdin(monkeypatch, capsys):
    answers = iter([PASSWORD, "something else entirely"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    code, _, err = run(monkeypatch, capsys, "agent", "add", "alice")
    assert code == 2 and "differ" in err


def test_the_config_refuses_a_plain_password_or_a_bad_login():
    with pytest.raises(ConfigError, match="not a password hash"):
        load_config(None, environ={}, overrides={"desk": {"agents": {"alice": "hunter2hunter2"}}})
    with pytest.raises(ConfigError, match="a login is"):
        load_config(None, environ={}, overrides={"desk": {"agents": {"Al ice": "scrypt:1:2:3$a$b"}}})


def test_an_agent_added_by_the_cli_can_log_in(monkeypatch, capsys, tmp_path):
    from bot.service import build_service
    from bot.web.app import create_app
    from tests.conftest_desk import log_in

    path = tmp_path / "dsarbot.toml"
    path.write_text(f'[service]\ndata_dir = "{tmp_path / "data"}"\n')
    run(monkeypatch, capsys, "agent", "add", "dana", "--password-stdin", "--write", str(path))
    service = build_service(load_config(path, environ={}))
    try:
        client = create_app(service).test_client()
        assert log_in(client, "dana", "wrong password!").status_code == 401
        assert log_in(client, "dana", PASSWORD).status_code == 303
    finally:
        service.close()


def test_writes_into_a_copy_of_the_example_config(monkeypatch, capsys, tmp_path):
    from tests.shared import REPO

    path = tmp_path / "dsarbot.toml"
    path.write_text((REPO / "config" / "dsarbot.example.toml").read_text())
    assert run(monkeypatch, capsys, "agent", "add", "alice", "--password-stdin", "--write", str(path))[0] == 0
    config = load_config(path, environ={})
    assert list(config.desk.agents) == ["alice"] and config.desk.soon_days == 7


def test_an_empty_inline_agents_table_makes_room():
    text = '[desk]\nagents = {}   # none yet\nsoon_days = 3\n\n[playbooks]\nsources = []\n'
    result = tomllib.loads(upsert_agent(text, "alice", "scrypt:1$a$b"))
    assert result["desk"] == {"soon_days": 3, "agents": {"alice": "scrypt:1$a$b"}}
    assert result["playbooks"] == {"sources": []}
