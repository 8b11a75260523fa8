"""A throw-away PostgreSQL database on the local server (127.0.0.1:5432), one per test."""
from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest

ADMIN_URL = os.environ.get("DSARBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _base(url: str) -> str:
    return url.rsplit("/", 1)[0]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh empty database, dropped afterwards. Fails clearly when PostgreSQL is not running."""
    import psycopg

    name = f"dsarbot_t_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {ADMIN_URL} ({exc}); start it with: "
                    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{_base(ADMIN_URL)}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
