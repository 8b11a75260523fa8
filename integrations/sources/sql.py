"""SQL databases (MariaDB/MySQL, PostgreSQL, SQLite) through a SQLAlchemy URL and a declarative mapping.

Rows are found level by level along the mapping (e-mail -> customer ids -> orders -> lines), one
indexed query per match rule, with bound parameters only. The session is read-only and every
statement has a server-side time limit, so a slow database cannot hold a worker for ever. Driver
errors become AuthFailed / NotReady / Misconfigured with messages that never carry query values.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping

from sqlalchemy import MetaData, Table, create_engine, event, func, inspect, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError, SQLAlchemyError

from bot.identity import merge, normalise_value
from integrations.base import (AuthFailed, IntegrationError, Misconfigured, NotReady, OnFileContact, Record,
                               Source, SourceResult, SubjectQuery)
from integrations.sources import SourceContext, secret, settings_reader
from integrations.sources.masking import apply_mask, clean_fields, implied_mask
from integrations.sources.sql_mapping import Entity, Mapping as SqlMapping, build_mapping

log = logging.getLogger(__name__)
CHUNK = 500  # values per IN (...) list: far below every engine's parameter limit


def _python_type(column: Any) -> type | None:
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def _coerce(column: Any, values: Iterable[str]) -> list[Any]:
    """Values as the column's type, so that PostgreSQL compares integers with integers (and uses the index)."""
    kind = _python_type(column)
    out = []
    for value in values:
        if kind is int:
            if value.lstrip("-").isdigit():
                out.append(int(value))
        else:
            out.append(value)
    return out


def translate_error(exc: Exception, engine_name: str) -> IntegrationError:
    """A driver error as one of the three outcomes, with a message free of query values."""
    if isinstance(exc, (ArgumentError, NoSuchModuleError)):
        return Misconfigured(f"the source url is not a valid SQLAlchemy URL ({type(exc).__name__})")
    orig = getattr(exc, "orig", None)
    code = orig.args[0] if orig is not None and orig.args and isinstance(orig.args[0], int) else None
    sqlstate = getattr(orig, "sqlstate", None)
    text = str(orig or exc).splitlines()[0][:200] if (orig or exc) else ""
    auth_words = ("password authentication failed", "authentication failed", "no pg_hba.conf entry")
    if (code in (1044, 1045, 1698) or sqlstate in ("28P01", "28000") or any(w in text for w in auth_words)
            or (text.startswith("connection failed") and "role" in text and "does not exist" in text)):
        return AuthFailed(f"{engine_name} refused the credentials ({code or sqlstate or 'auth'}): check the user "
                          "and password in the source url (or its url_env variable)")
    if code == 1049 or sqlstate == "3D000" or ("database" in text and "does not exist" in text):
        return Misconfigured(f"{engine_name}: the database named in the url does not exist")
    if code in (1146, 1054) or sqlstate in ("42P01", "42703") or "no such table" in text or "no such column" in text:
        return Misconfigured(f"{engine_name}: a mapped table or column does not exist ({code or sqlstate or 'schema'});"
                             " run the source check to see which")
    if code in (1969, 3024) or sqlstate == "57014":
        return NotReady(f"{engine_name}: a query exceeded the time limit")
    if code in (2002, 2003, 2005, 2006, 2013) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return NotReady(f"{engine_name} is not reachable ({code or 'connection lost'})")
    if isinstance(exc, OperationalError) and code is None and sqlstate is None:
        # Connection-level failures (refused, unknown host, unreadable file): the driver's first line
        # names the server, never a query value.
        return NotReady(f"{engine_name} is not reachable: {text}")
    return NotReady(f"{engine_name} error ({code or sqlstate or type(orig or exc).__name__})")


class SqlSource(Source):
    def __init__(self, name: str, system: str, url: str, mapping: SqlMapping, context: SourceContext,
                 timeout: float, case_insensitive: str = "auto") -> None:
        self.name = name
        self.system = system
        self.mapping = mapping
        self._url = url
        self._context = context
        self._timeout = timeout
        self._case_insensitive = case_insensitive
        self._engine: Engine | None = None
        self._tables: dict[str, Table | None] | None = None
        self._lock = threading.Lock()

    # --- the Source interface ------------------------------------------------------------------
    def accepts(self) -> list[str]:
        return [self.mapping.publish.get(k, k) for k in self.mapping.accepts]

    def publishes(self) -> list[str]:
        return self.mapping.published

    def entities(self) -> list[str]:
        return [name for name, e in self.mapping.entities.items() if e.records]

    def check(self) -> str | None:
        try:
            with self._connect() as conn:
                self._schema(conn)
        except IntegrationError as exc:
            return str(exc)
        return None

    def find(self, query: SubjectQuery) -> SourceResult:
        known = self._seeds(query.emails, query.identifiers)
        if not any(known.values()):
            return SourceResult(self.name, [])
        found: dict[str, dict[tuple, tuple[dict[str, Any], set[str]]]] = {}
        with self._connect() as conn:
            tables = self._schema(conn)
            for level in self.mapping.levels:
                for name in level:
                    entity, table = self.mapping.entities[name], tables.get(name)
                    if table is None:
                        continue  # an optional module table that is not installed
                    rows = self._fetch(conn, entity, table, known)
                    found[name] = rows
                    for kind, column in entity.produces.items():
                        bucket = known.setdefault(kind, {})
                        for row, _ in rows.values():
                            value = normalise_value(kind, row.get(column))
                            if value is not None:
                                bucket.setdefault(value, name)
        fetched_at = self._context.now().isoformat()
        records = [self._record(self.mapping.entities[name], key, row, matched, fetched_at)
                   for name, rows in found.items() if self.mapping.entities[name].records
                   for key, (row, matched) in rows.items()]
        discovered: dict[str, list[str]] = {}
        for local, published in self.mapping.publish.items():
            merge(discovered, published, sorted(known.get(local, {})))
        return SourceResult(self.name, records, {k: v for k, v in discovered.items() if v})

    def contacts(self, identifiers: Mapping[str, list[str]]) -> list[OnFileContact]:
        seeds = self._seeds(identifiers.get("email", []), identifiers)
        found: list[OnFileContact] = []
        with self._connect() as conn:
            meta = MetaData()
            tables = {t.name: t for t in self._schema(conn).values() if t is not None}

            def table_named(name: str) -> Table:
                return tables.get(name) if name in tables else Table(name, meta, autoload_with=conn)

            for rule in self.mapping.contacts:
                values = list(seeds.get(rule.kind, {}))
                if not values:
                    continue
                table = table_named(rule.table)
                if rule.via_table:
                    via = table_named(rule.via_table)
                    keys = [r[0] for r in conn.execute(select(table.c[rule.via_join[0]]).where(
                        self._match_clause(table.c[rule.column], rule.kind, values)))]
                    keys = [k for k in keys if normalise_value("id", k) is not None]
                    stmt = select(via.c[rule.email]).where(via.c[rule.via_join[1]].in_(keys)) if keys else None
                else:
                    stmt = select(table.c[rule.email]).where(self._match_clause(table.c[rule.column], rule.kind,
                                                                                values))
                for row in conn.execute(stmt) if stmt is not None else []:
                    email = normalise_value("email", row[0])
                    if email and "@" in email:
                        found.append(OnFileContact(email, self.name, rule.kind))
        return list(dict.fromkeys(found))

    # --- internals -----------------------------------------------------------------------------
    def _seeds(self, emails: Iterable[str], identifiers: Mapping[str, Iterable[str]]) -> dict[str, dict[str, str]]:
        """Local identifier kind -> {value: where it came from}; only the kinds this source accepts."""
        known: dict[str, dict[str, str]] = {}
        for local in self.mapping.accepts:
            published = self.mapping.publish.get(local, local)
            values = emails if local == "email" else identifiers.get(published, [])
            for value in values:
                norm = normalise_value(local, value)
                if norm is not None:
                    known.setdefault(local, {})[norm] = "verified"
        return known

    @property
    def engine_name(self) -> str:
        return {"mysql": "MariaDB/MySQL", "postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(
            self._url.split(":", 1)[0].split("+", 1)[0], "database")

    def _get_engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._create_engine()
            return self._engine

    def _create_engine(self) -> Engine:
        timeout = max(1, int(self._timeout))
        dialect = self._url.split(":", 1)[0].split("+", 1)[0]
        connect_args: dict[str, Any] = {}
        if dialect == "mysql":
            connect_args = {"connect_timeout": timeout, "read_timeout": timeout + 5}
        elif dialect == "postgresql":
            connect_args = {"connect_timeout": timeout}
        try:
            # hide_parameters: SQLAlchemy's own messages then never quote the subject's e-mail.
            engine = create_engine(self._url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args)
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            raise Misconfigured(f"the source url is not usable ({type(exc).__name__})") from None

        @event.listens_for(engine, "connect")
        def _session_limits(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            try:
                if engine.dialect.name == "mysql":
                    limit = ("SET SESSION max_statement_time = %d" % timeout if getattr(engine.dialect, "is_mariadb",
                                                                                       False)
                             else "SET SESSION max_execution_time = %d" % (timeout * 1000))
                    cursor.execute(limit)
                    cursor.execute("SET SESSION TRANSACTION READ ONLY")
                elif engine.dialect.name == "postgresql":
                    cursor.execute("SET statement_timeout = %d" % (timeout * 1000))
                    cursor.execute("SET default_transaction_read_only = on")
            finally:
                cursor.close()
            if engine.dialect.name == "postgresql":
                dbapi_conn.commit()

        return engine

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            conn = self._get_engine().connect()
        except SQLAlchemyError as exc:
            raise translate_error(exc, self.engine_name) from None
        try:
            yield conn
        except SQLAlchemyError as exc:
            raise translate_error(exc, self.engine_name) from None
        finally:
            conn.close()

    def _schema(self, conn: Connection) -> dict[str, Table | None]:
        with self._lock:
            if self._tables is not None:
                return self._tables
        present = set(inspect(conn).get_table_names())
        wanted = {e.table for e in self.mapping.entities.values()}
        for entity in self.mapping.entities.values():
            if entity.table not in present and not entity.optional:
                raise Misconfigured(f"table {entity.table!r} (entity {entity.name!r}) does not exist in the "
                                    "database; check the url, the prefix setting, or list the tables this shop "
                                    "has under tables:")
        meta = MetaData()
        meta.reflect(bind=conn, only=sorted(wanted & present))
        tables: dict[str, Table | None] = {}
        for entity in self.mapping.entities.values():
            table = meta.tables.get(entity.table)
            if table is not None:
                self._check_columns(entity, table)
            tables[entity.name] = table
        with self._lock:
            self._tables = tables
        return tables

    @staticmethod
    def _check_columns(entity: Entity, table: Table) -> None:
        named = {"key": entity.key, "match": [r.column for r in entity.match],
                 "match where": [c for r in entity.match for c in r.where], "where": list(entity.where),
                 "produces": list(entity.produces.values()), "include": entity.include or [],
                 "mask": list(entity.mask), "transform": list(entity.transform)}
        if entity.meta:
            named["meta"] = [entity.meta.key_column, entity.meta.value_column]
        for role, columns in named.items():
            for column in columns:
                if column not in table.c:
                    raise Misconfigured(f"table {table.name!r} has no column {column!r} (entity {entity.name!r}, "
                                        f"{role}); fix the mapping")

    def _ci(self, kind: str, conn_dialect: str) -> bool:
        if kind != "email" or self._case_insensitive == "false":
            return False
        # MariaDB/MySQL compare with the column's *_ci collation already (and keep using the index).
        return self._case_insensitive == "true" or conn_dialect != "mysql"

    def _match_clause(self, column: Any, kind: str, values: list[str]) -> Any:
        if self._ci(kind, self._get_engine().dialect.name):
            return func.lower(column).in_(values)
        return column.in_(_coerce(column, values))

    def _fetch(self, conn: Connection, entity: Entity, table: Table,
               known: dict[str, dict[str, str]]) -> dict[tuple, tuple[dict[str, Any], set[str]]]:
        wanted = [c.name for c in table.c] if entity.include is None else list(entity.include)
        needed = set(entity.key) | {r.column for r in entity.match} | set(entity.produces.values())
        if entity.meta:
            needed |= {entity.meta.key_column, entity.meta.value_column}
        columns = [table.c[name] for name in dict.fromkeys([*wanted, *sorted(needed)])]
        rows: dict[tuple, tuple[dict[str, Any], set[str]]] = {}
        for rule in entity.match:
            values = list(known.get(rule.kind, {}))
            for start in range(0, len(values), CHUNK):
                chunk = values[start:start + CHUNK]
                clause = self._match_clause(table.c[rule.column], rule.kind, chunk)
                stmt = select(*columns).where(clause)
                for column, allowed in {**entity.where, **rule.where}.items():
                    stmt = stmt.where(table.c[column].in_(allowed))
                for row in conn.execute(stmt).mappings():
                    origin = known[rule.kind].get(normalise_value(rule.kind, row[rule.column]) or "", "")
                    label = rule.kind if origin in ("verified", "") else f"{rule.kind} via {origin}"
                    key = tuple(row[k] for k in entity.key)
                    entry = rows.setdefault(key, (dict(row), set()))
                    entry[1].add(label)
        return rows

    def _record(self, entity: Entity, key: tuple, row: dict[str, Any], matched: set[str], fetched_at: str) -> Record:
        visible = [c for c in row if c not in entity.exclude and (entity.include is None or c in entity.include)]
        fields = clean_fields({c: row[c] for c in visible}, entity.mask, entity.transform)
        if entity.meta and entity.meta.value_column in fields:
            meta_key = str(row.get(entity.meta.key_column) or "")
            treatment = entity.meta.mask.get(meta_key) or implied_mask(meta_key.lstrip("_"))
            if treatment and treatment != "show":
                masked = apply_mask(treatment, fields[entity.meta.value_column])
                if masked is ...:
                    fields.pop(entity.meta.value_column)
                else:
                    fields[entity.meta.value_column] = masked
        return Record(source=self.name, system=self.system, entity=entity.name,
                      record_id=":".join(str(k) for k in key), fields=fields, fetched_at=fetched_at,
                      matched_on=sorted(matched))


SETTINGS = {"url", "url_env", "preset", "prefix", "tables", "entities", "accepts", "publish", "contacts",
            "case_insensitive", "system"}


def build(name: str, settings: dict[str, Any], context: SourceContext) -> SqlSource:
    read = settings_reader(name, settings, SETTINGS)
    url = secret(settings, "url")
    if not url:
        raise Misconfigured(f"source {name!r}: url (a SQLAlchemy URL such as "
                            "mysql+pymysql://user@host/shop) or url_env (the variable holding it) is required")
    mapping = build_mapping(read("preset"), settings, prefix=read("prefix", ""), only=read("tables"),
                            where_label=f"source {name!r}")
    ci = str(read("case_insensitive", "auto")).lower()
    if ci not in ("auto", "true", "false"):
        raise Misconfigured(f"source {name!r}: case_insensitive must be auto, true or false")
    return SqlSource(name, read("system", mapping.system), url, mapping, context,
                     timeout=context.timeout, case_insensitive=ci)
