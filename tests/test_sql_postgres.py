"""The `generic` SQL preset on the real PostgreSQL server: case-insensitive e-mails, typed ids, limits, failures."""
from __future__ import annotations

import socket
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from integrations.base import AuthFailed, NotReady, SubjectQuery
from integrations.sources import SourceContext, build_source
from integrations.sources.masking import HASH_WITHHELD
from tests.dbs import postgres_database, run_sql
from tests.test_sql_prestashop import by_entity

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL, first_name text, last_name text, phone text,
                        password_hash text, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX customers_email ON customers (lower(email));
CREATE TABLE addresses (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, line1 text,
                        city text, phone text);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers, email text NOT NULL,
                     reference text NOT NULL, total numeric(10,2) NOT NULL, created_at timestamptz NOT NULL);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_email ON orders (lower(email));
CREATE TABLE order_lines (id serial PRIMARY KEY, order_id int NOT NULL REFERENCES orders, product text,
                          quantity int);
CREATE TABLE payments (id serial PRIMARY KEY, order_id int NOT NULL REFERENCES orders, card_number text,
                       paid_at timestamptz);
CREATE TABLE support_messages (id serial PRIMARY KEY, customer_id int, email text NOT NULL, body text);
"""
MARIE = "marie.curie@example.org"
OTHER = "m.curie@example.com"


def seed() -> list[tuple[str, dict] | str]:
    t = "2024-03-01T10:00:00+00:00"
    return [
        *[s for s in SCHEMA.split(";") if s.strip()],
        ("INSERT INTO customers (id, email, first_name, last_name, phone, password_hash) VALUES "
         "(1, 'Marie.Curie@Example.org', 'Marie', 'Curie', '+33 6 00 00 00 01', 'argon2id$v=19$abc'), "
         "(2, :other, 'Marie', 'Curie', '+33 6 00 00 00 01', 'argon2id$v=19$def')", {"other": OTHER}),
        "INSERT INTO addresses (customer_id, line1, city, phone) VALUES (1, '1 rue Pierre', 'Paris', "
        "'+33 6 00 00 00 01'), (2, '1 rue Pierre', 'Paris', '+33 6 00 00 00 01')",
        ("INSERT INTO orders (id, customer_id, email, reference, total, created_at) VALUES "
         "(10, 1, :marie, 'R-10', 12.50, :t), (11, NULL, 'MARIE.CURIE@example.org', 'R-11', 99.99, :t), "
         "(12, 2, :other, 'R-12', 5.00, :t)", {"marie": MARIE, "other": OTHER, "t": t}),
        "INSERT INTO order_lines (order_id, product, quantity) VALUES (10, 'Radium kit', 1), (11, 'Lab coat', 2), "
        "(12, 'Notebook', 3)",
        "INSERT INTO payments (order_id, card_number, paid_at) VALUES (10, '5555555555554444', now()), "
        "(12, '4000056655665556', now())",
        ("INSERT INTO support_messages (customer_id, email, body) VALUES (NULL, :marie, 'Question'), "
         "(2, :other, 'Other question')", {"marie": MARIE, "other": OTHER}),
    ]


@pytest.fixture(scope="module")
def pg_url():
    with postgres_database() as url:
        run_sql(url, seed())
        yield url


@pytest.fixture(scope="module")
def source(pg_url):
    return build_source({"name": "db", "type": "sql", "url": pg_url, "preset": "generic", "timeout": 7},
                        SourceContext(now=lambda: NOW))


def test_generic_preset_finds_the_subject_case_insensitively(source):
    assert source.check() is None  # newsletter_subscriptions is optional and absent
    result = source.find(SubjectQuery(emails=["MARIE.curie@example.ORG"]))
    assert by_entity(result) == {"customers": {"1"}, "addresses": {"1"}, "orders": {"10", "11"},
                                 "order_lines": {"1", "2"}, "payments": {"1"}, "support_messages": {"1"}}
    fields = {(r.entity, r.record_id): r.fields for r in result.records}
    assert fields[("customers", "1")]["password_hash"] == HASH_WITHHELD
    assert fields[("payments", "1")]["card_number"] == "**** 4444"
    assert fields[("orders", "11")]["total"] == "99.99"  # exact decimals, as text
    assert fields[("orders", "10")]["created_at"].startswith("2024-03-01T10:00:00")
    assert OTHER not in repr(fields) and "R-12" not in repr(fields)


def test_a_verified_customer_id_is_compared_as_an_integer(source):
    result = source.find(SubjectQuery(emails=[], identifiers={"customer_id": ["2", "not-a-number"]}))
    assert {r.record_id for r in result.records if r.entity == "customers"} == {"2"}


def test_sessions_are_read_only_with_a_statement_time_limit(source):
    with source._connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "7s"
        assert conn.execute(text("SHOW default_transaction_read_only")).scalar() == "on"


def test_unknown_role_is_an_authentication_failure(pg_url):
    bad = pg_url.replace("postgres@", "no_such_role_dsarbot:wrong@")
    src = build_source({"name": "db", "type": "sql", "url": bad, "preset": "generic"}, SourceContext(now=lambda: NOW))
    with pytest.raises(AuthFailed):
        src.find(SubjectQuery(emails=[MARIE]))
    assert "credentials" in src.check()


def test_a_server_that_is_down_is_not_ready(pg_url):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    down = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{port}")
    src = build_source({"name": "db", "type": "sql", "url": down, "preset": "generic", "timeout": 2},
                       SourceContext(now=lambda: NOW))
    with pytest.raises(NotReady) as caught:
        src.find(SubjectQuery(emails=[MARIE]))
    assert MARIE not in str(caught.value) and "not reachable" in str(caught.value)
