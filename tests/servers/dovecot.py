"""A throw-away Dovecot IMAP server for tests: own config, users and maildirs in a temp dir.

Dovecot comes from Debian's `dovecot-imapd` package (`apt-get install -y dovecot-imapd`). The server
listens on 127.0.0.1 on a free port, without TLS (loopback only), with users in a passwd-file.
Run as root it needs unprivileged users for its login and internal processes, and the mail
processes run as `dovenull` too, owning the maildirs.

Fixtures: `dovecot` (one server per test session), `imap_account` (a fresh user on it per test) and
`dovecot_basic` (a server advertising no IDLE, MOVE or UIDPLUS).
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

import pytest
from imapclient import IMAPClient

DOVECOT = "/usr/sbin/dovecot"

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
instance_name = dsarbot-test-{port}
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = 1
mail_location = maildir:{base}/mail/%u
mail_uid = {mail_uid}
mail_gid = {mail_gid}
mail_privileged_group =
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/users/%u
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={base}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
service pop3-login {{
  chroot =
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _service_users() -> tuple[str, str, int, int]:
    """(login user, internal user, mail uid, mail gid): unprivileged accounts Dovecot may use."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return me.pw_name, me.pw_name, me.pw_uid, me.pw_gid
    try:
        login, internal = pwd.getpwnam("dovenull"), pwd.getpwnam("dovecot")
    except KeyError:
        raise RuntimeError("users dovenull/dovecot missing: install Dovecot with `apt-get install -y dovecot-imapd`")
    return login.pw_name, internal.pw_name, login.pw_uid, login.pw_gid


@dataclass
class Account:
    host: str
    port: int
    username: str
    password: str

    def client(self) -> IMAPClient:
        client = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        client.login(self.username, self.password)
        return client

    def append(self, raw: bytes, folder: str = "INBOX", msg_time: datetime | None = None) -> None:
        with self.client() as client:
            client.append(folder, raw, msg_time=msg_time)

    def create_folder(self, folder: str) -> None:
        with self.client() as client:
            client.create_folder(folder)

    def uids(self, folder: str = "INBOX", criteria: str | list[str] = "ALL") -> list[int]:
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            return sorted(client.search(criteria))

    def config_overrides(self, **extra: object) -> dict[str, object]:
        """The `[mailbox]` section for dsarbot's config pointing at this account."""
        return {"enabled": True, "host": self.host, "port": self.port, "ssl": False,
                "username": self.username, "password": self.password, **extra}


class DovecotServer:
    """Start with `start()`, stop with `stop()`; `add_user()` works while it runs."""

    def __init__(self, base: Path, extra_config: str = "") -> None:
        self.base = base
        self.extra_config = extra_config  # appended to the config, e.g. "imap_capability = IMAP4rev1"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.login_user, self.internal_user, self.mail_uid, self.mail_gid = _service_users()

    @property
    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        if not Path(DOVECOT).exists():
            raise RuntimeError(f"{DOVECOT} not found: install Dovecot with `apt-get install -y dovecot-imapd`")
        for sub in ("run", "state", "mail", "home"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("mail", "home"):
            os.chown(self.base / sub, self.mail_uid, self.mail_gid)
        os.chmod(self.base, 0o755)
        # one passwd-file per user: a new user is a new file, never a reload of a changed one
        (self.base / "users").mkdir(exist_ok=True)
        conf = self.base / "dovecot.conf"
        conf.write_text(CONFIG.format(base=self.base, port=self.port, login_user=self.login_user,
                                      internal_user=self.internal_user, mail_uid=self.mail_uid,
                                      mail_gid=self.mail_gid) + self.extra_config + "\n")
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode(errors="replace") if self.process.stdout else ""
                raise RuntimeError(f"dovecot exited ({self.process.returncode}): {output}\n{self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    if sock.recv(64).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not answer on port {self.port} within 15 s:\n{self.log}")

    def add_user(self, username: str | None = None, password: str | None = None) -> Account:
        username = username or f"u{secrets.token_hex(4)}"
        password = password or secrets.token_urlsafe(12)
        (self.base / "users" / username).write_text(f"{username}:{{PLAIN}}{password}::::::\n")
        return Account("127.0.0.1", self.port, username, password)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process and self.process.stdout:
            self.process.stdout.close()
        self.process = None


@contextmanager
def running_dovecot(extra_config: str = "") -> Iterator[DovecotServer]:
    base = Path(tempfile.mkdtemp(prefix="dsarbot-dovecot-"))
    server = DovecotServer(base, extra_config)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    with running_dovecot() as server:
        yield server


@pytest.fixture(scope="session")
def dovecot_basic() -> Iterator[DovecotServer]:
    """A server advertising bare IMAP4rev1: no IDLE, no MOVE, no UIDPLUS (the fallback paths)."""
    with running_dovecot("imap_capability = IMAP4rev1 LITERAL+") as server:
        yield server


@pytest.fixture
def imap_account(dovecot: DovecotServer) -> Account:
    return dovecot.add_user()
