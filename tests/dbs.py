"""Throw-away databases on the real MariaDB and PostgreSQL servers of this machine (127.0.0.1).

Each test database has a unique name and is dropped afterwards, since other work uses the same
servers. A missing server fails the test with a clear message rather than skipping it.
"""
from __future__ import annotations

import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text

MARIADB_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/"
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def unique_name() -> str:
    return f"dsarbot_t_{uuid.uuid4().hex[:8]}"


@contextmanager
def mariadb_database(*sql_files: Path) -> Iterator[str]:
    """A fresh MariaDB database with the given dump files loaded by the `mariadb` client, as a URL."""
    name = unique_name()
    try:
        admin = create_engine(MARIADB_ADMIN)
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except Exception as exc:  # noqa: BLE001 - the message must say what is missing
        pytest.fail(f"MariaDB is required at 127.0.0.1:3306 (root, no password): {exc}")
    try:
        for path in sql_files:
            with path.open("rb") as handle:
                done = subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", name], stdin=handle,
                                      capture_output=True, timeout=300)
            assert done.returncode == 0, f"loading {path} failed: {done.stderr.decode()[:500]}"
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@contextmanager
def postgres_database() -> Iterator[str]:
    name = unique_name()
    try:
        admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"PostgreSQL is required at 127.0.0.1:5432 (postgres, trust auth): {exc}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def ins(table: str, **values: object) -> tuple[str, dict]:
    """One INSERT for `run_sql`: column names quoted, values bound."""
    return (f"INSERT INTO {table} ({', '.join(f'`{k}`' for k in values)}) "
            f"VALUES ({', '.join(':' + k for k in values)})", values)


def shop_schemas() -> list[Path]:
    """The real PrestaShop 8.1 and WooCommerce schemas (shared/schemas), loadable into one database."""
    from tests.shared import shared_dir

    root = shared_dir() / "schemas"
    return [root / "prestashop" / "mariadb.sql", root / "woocommerce" / "mariadb.sql"]


def run_sql(url: str, statements: list[tuple[str, dict]] | list[str]) -> None:
    """Seed rows. `sql_mode=''` as the shop engines' installers expect (columns left out get their defaults)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "mysql":
                conn.execute(text("SET SESSION sql_mode = ''"))
            for item in statements:
                sql, params = (item, {}) if isinstance(item, str) else item
                conn.execute(text(sql), params)
    finally:
        engine.dispose()
