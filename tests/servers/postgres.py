"""A throw-away PostgreSQL database on the local server (127.0.0.1:5432), one per test."""
from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest

ADMIN_URL = os.environ.get("DSARBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _base(url: str) -> str:
    return url.rsplit("/", 1)[0]


def create_database(prefix: str = "dsarbot_t") -> str:
    """A fresh empty database on the local server; its URL. Raises with a clear message when the
    server is not running."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise RuntimeError(f"PostgreSQL is not reachable at {ADMIN_URL} ({exc}); start it with: "
                           "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start") from exc
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{_base(ADMIN_URL)}/{name}"


def drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh empty database, dropped afterwards. Fails clearly when PostgreSQL is not running."""
    try:
        url = create_database()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield url
    finally:
        drop_database(url)
