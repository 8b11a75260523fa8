"""A throw-away PostgreSQL database on the local server (127.0.0.1:5432), one per test."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Iterator

import pytest

ADMIN_URL = os.environ.get("DSARBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _base(url: str) -> str:
    return url.rsplit("/", 1)[0]


@contextmanager
def fresh_database(admin_url: str = ADMIN_URL, prefix: str = "dsarbot_t_") -> Iterator[str]:
    """URL of a new empty database on the server of `admin_url`, dropped afterwards (tests, benches)."""
    import psycopg

    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{_base(admin_url)}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh empty database, dropped afterwards. Fails clearly when PostgreSQL is not running."""
    import psycopg

    try:
        psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {ADMIN_URL} ({exc}); start it with: "
                    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")
    with fresh_database() as url:
        yield url
