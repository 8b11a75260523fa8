"""`dsarbot agent add LOGIN`: create a desk agent's password hash and the `[desk.agents]` line for it.

The password never reaches the configuration: only its werkzeug hash does (scrypt). Prints the
TOML line, or with `--write FILE` adds (or replaces) it in that file's `[desk.agents]` table.
"""
from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
import tomllib
from pathlib import Path

from werkzeug.security import generate_password_hash

from bot.config import AGENT_LOGIN

HELP = "manage agents of the built-in desk (dsarbot agent add LOGIN)"
MIN_PASSWORD_LENGTH = 12
_TABLE = re.compile(r"^\s*\[\s*desk\s*\.\s*agents\s*\]\s*(#.*)?$")
_ANY_TABLE = re.compile(r"^\s*\[")
_DESK = re.compile(r"^\s*\[\s*desk\s*\]\s*(#.*)?$")
_EMPTY_INLINE = re.compile(r"^\s*agents\s*=\s*\{\s*\}\s*(#.*)?$")


class AgentFileError(ValueError):
    """The configuration file cannot take the line safely; the message says what to do by hand."""


def agent_line(login: str, password_hash: str) -> str:
    return f'{login} = "{password_hash}"'


def upsert_agent(text: str, login: str, password_hash: str) -> str:
    """`text` (a TOML document) with `login` set to `password_hash` in its `[desk.agents]` table."""
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AgentFileError(f"not valid TOML ({exc})") from None
    line = agent_line(login, password_hash)
    lines = text.splitlines()
    if before.get("desk", {}).get("agents") == {}:
        lines = _without_empty_inline_agents(lines)  # `agents = {}` as in the example: make room for a table
        text = "\n".join(lines) + "\n"
        before = tomllib.loads(text)
    start = next((i for i, l in enumerate(lines) if _TABLE.match(l)), None)
    if start is None:
        if "agents" in before.get("desk", {}):
            raise AgentFileError("agents are defined inline under [desk]; add this under them by hand:\n  " + line)
        result = text.rstrip("\n") + ("\n\n" if text.strip() else "") + "[desk.agents]\n" + line + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if _ANY_TABLE.match(lines[i])), len(lines))
        own = re.compile(rf'^\s*"?{re.escape(login)}"?\s*=')
        found = next((i for i in range(start + 1, end) if own.match(lines[i])), None)
        if found is not None:
            lines[found] = line
        else:
            last = max([i for i in range(start, end) if lines[i].strip()], default=start)
            lines.insert(last + 1, line)
        result = "\n".join(lines) + "\n"
    after = tomllib.loads(result)
    if after.get("desk", {}).get("agents", {}).get(login) != password_hash:
        raise AgentFileError("the file's layout hides the new line; add it by hand:\n  " + line)
    return result


def _without_empty_inline_agents(lines: list[str]) -> list[str]:
    desk = next((i for i, l in enumerate(lines) if _DESK.match(l)), None)
    if desk is None:
        return lines
    end = next((i for i in range(desk + 1, len(lines)) if _ANY_TABLE.match(lines[i])), len(lines))
    return [l for i, l in enumerate(lines) if not (desk < i < end and _EMPTY_INLINE.match(l))]


def write_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password for the new agent: ")
    if getpass.getpass("Same password again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def cmd_add(args: argparse.Namespace) -> int:
    login = args.login.strip().lower()
    if not AGENT_LOGIN.fullmatch(login):
        print("dsarbot agent add: a login is 1-64 lower-case letters, digits, '.', '_' or '-'", file=sys.stderr)
        return 2
    try:
        password = read_password(args.password_stdin)
    except (ValueError, EOFError) as exc:
        print(f"dsarbot agent add: {exc or 'no password given'}", file=sys.stderr)
        return 2
    if len(password) < MIN_PASSWORD_LENGTH:
        print(f"dsarbot agent add: the password needs at least {MIN_PASSWORD_LENGTH} characters", file=sys.stderr)
        return 2
    password_hash = generate_password_hash(password)
    if not args.write:
        print("[desk.agents]")
        print(agent_line(login, password_hash))
        return 0
    path = Path(args.write)
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        write_atomically(path, upsert_agent(text, login, password_hash))
    except (AgentFileError, OSError) as exc:
        print(f"dsarbot agent add: {path}: {exc}", file=sys.stderr)
        return 1
    print(f"agent {login} written to {path} (restart the service to apply)")
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="agent_command", required=True)
    add = sub.add_parser("add", help="create an agent: prints the [desk.agents] line or writes it to a config file")
    add.add_argument("login", help="the agent's login (lower-case letters, digits, . _ -)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    add.add_argument("--write", metavar="CONFIG", help="add or replace the agent in this TOML configuration file")
    add.set_defaults(func=cmd_add)
