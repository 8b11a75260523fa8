"""Benchmark: time to gather one customer's data from a big shop and a 1 GB event log, then from a 10x smaller shop.

The shop is the real PrestaShop 8.1 schema (shared/schemas) on the MariaDB server of this machine,
with the indexes PrestaShop creates, filled with INSERT ... SELECT from MariaDB's sequence engine:
customers, one address each, N orders and N order lines per customer, visitors and their
connections, support threads and messages, and the mail log. The event log is JSON lines with
events of random customers and, scattered through it, the measured customer's own events.
Everything is built once and reused (`--rebuild` starts again), so only the first run is slow.

    /work/main/.venv/bin/python bench/gather.py            # 1M customers / 10M orders / 1 GB, then 100k
    /work/main/.venv/bin/python bench/gather.py --customers 20000 --small 2000 --log-gb 0.02   # a quick try

Prints, for each size, the time to gather one customer (records found, time per source).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, text  # noqa: E402

from bot.config import PlaybooksConfig  # noqa: E402
from bot.gathering import build_gatherer  # noqa: E402
from bot.models import utcnow  # noqa: E402
from integrations.base import SubjectQuery  # noqa: E402

SERVER = "mysql+pymysql://root@127.0.0.1:3306"
SCHEMA_VERSION = 1  # bump when the generated data changes, to rebuild old bench databases
CHUNK = 1_000_000  # rows per INSERT ... SELECT (one transaction each)
FIRSTNAMES = ["Camille", "Jean", "Marie", "Léa", "Hugo", "Chloé", "Louis", "Emma", "Lucas", "Inès"]
LASTNAMES = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau"]


def email_of(customer_id: int) -> str:
    """The same address the SQL below generates (diverse prefixes, as real addresses have)."""
    return f"{hashlib.md5(str(customer_id).encode()).hexdigest()[:6]}.client{customer_id}@bench.example"


def shared_dir() -> Path:
    for candidate in (REPO.parent / "shared", Path("/work/shared")):
        if (candidate / "schemas").is_dir():
            return candidate
    raise SystemExit("shared/schemas not found (set up /work/shared)")


def log(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", flush=True)


# --- the shop database -------------------------------------------------------------------------
def _names(column: str, values: list[str], seq: str = "seq") -> str:
    return "ELT(1 + {} MOD {}, {})".format(seq, len(values), ", ".join(f"'{v}'" for v in values))


def table_fills(customers: int, per_customer: int) -> list[tuple[str, int, str]]:
    """(table, rows, INSERT ... SELECT over seq_{lo}_to_{hi}) for every table the bench fills."""
    first, last = _names("firstname", FIRSTNAMES), _names("lastname", LASTNAMES, "(seq DIV 10)")
    cust_of_order = f"((seq - 1) DIV {per_customer}) + 1"
    return [
        ("ps_customer", customers,
         "INSERT INTO ps_customer (id_customer, id_gender, id_lang, firstname, lastname, email, passwd, birthday, "
         "newsletter, secure_key, is_guest, active, date_add, date_upd) "
         f"SELECT seq, 1 + seq MOD 2, 1, {first}, {last}, "
         "CONCAT(LEFT(MD5(seq), 6), '.client', seq, '@bench.example'), "
         "IF(seq MOD 7 = 0, '', CONCAT('$2y$10$', MD5(seq))), '1990-01-01' + INTERVAL (seq MOD 9000) DAY, "
         "seq MOD 3 = 0, MD5(seq), seq MOD 7 = 0, 1, '2015-01-01' + INTERVAL (seq DIV 200) HOUR, "
         "'2015-01-01' + INTERVAL (seq DIV 200) HOUR FROM seq_{lo}_to_{hi}"),
        ("ps_address", customers,
         "INSERT INTO ps_address (id_address, id_country, id_customer, alias, lastname, firstname, address1, "
         "postcode, city, phone, date_add, date_upd) "
         f"SELECT seq, 8, seq, 'Maison', {last}, {first}, CONCAT(1 + seq MOD 200, ' rue de la République'), "
         "LPAD(seq MOD 95000, 5, '0'), 'Lyon', CONCAT('06 ', LPAD(seq MOD 100000, 8, '0')), "
         "'2015-01-01', '2015-01-01' FROM seq_{lo}_to_{hi}"),
        ("ps_orders", customers * per_customer,
         "INSERT INTO ps_orders (id_order, reference, id_carrier, id_lang, id_customer, id_cart, id_currency, "
         "id_address_delivery, id_address_invoice, current_state, secure_key, payment, module, total_paid, "
         "total_paid_tax_incl, total_paid_tax_excl, total_paid_real, total_products, total_products_wt, "
         "conversion_rate, invoice_number, invoice_date, delivery_date, valid, date_add, date_upd) "
         f"SELECT seq, UPPER(LPAD(CONV(seq, 10, 36), 9, '0')), 1, 1, {cust_of_order}, seq, 1, {cust_of_order}, "
         f"{cust_of_order}, 2 + seq MOD 4, MD5(seq), 'Carte bancaire', 'ps_checkout', 42.5, 42.5, 35.42, 42.5, "
         "37.6, 37.6, 1, seq, '2016-01-01' + INTERVAL (seq DIV 50) MINUTE, '2016-01-03', 1, "
         "'2016-01-01' + INTERVAL (seq DIV 50) MINUTE, '2016-01-01' + INTERVAL (seq DIV 50) MINUTE "
         "FROM seq_{lo}_to_{hi}"),
        ("ps_order_detail", customers * per_customer,
         "INSERT INTO ps_order_detail (id_order_detail, id_order, id_shop, product_id, product_name, "
         "product_quantity, product_price, product_weight, tax_name, total_price_tax_incl, total_price_tax_excl, "
         "unit_price_tax_incl, unit_price_tax_excl) "
         "SELECT seq, seq, 1, 1 + seq MOD 500, CONCAT('Théière en fonte n°', 1 + seq MOD 500), 1 + seq MOD 3, "
         "35.42, 0.8, 'TVA FR 20%', 42.5, 35.42, 42.5, 35.42 FROM seq_{lo}_to_{hi}"),
        ("ps_guest", customers,
         "INSERT INTO ps_guest (id_guest, id_operating_system, id_web_browser, id_customer, accept_language) "
         "SELECT seq, 1 + seq MOD 8, 1 + seq MOD 10, seq, 'fr' FROM seq_{lo}_to_{hi}"),
        ("ps_connections", 2 * customers,
         "INSERT INTO ps_connections (id_connections, id_guest, id_page, ip_address, date_add, http_referer) "
         f"SELECT seq, ((seq - 1) MOD {customers}) + 1, 1 + seq MOD 300, 3405803776 + seq MOD 255, "
         "'2023-01-01' + INTERVAL (seq DIV 20) MINUTE, 'https://www.qwant.com/' FROM seq_{lo}_to_{hi}"),
        ("ps_customer_thread", customers // 10,
         "INSERT INTO ps_customer_thread (id_customer_thread, id_lang, id_contact, id_customer, email, token, "
         "date_add, date_upd) "
         "SELECT seq, 1, 2, seq * 10, CONCAT(LEFT(MD5(seq * 10), 6), '.client', seq * 10, '@bench.example'), "
         "LEFT(MD5(seq), 12), '2022-01-01', '2022-01-01' FROM seq_{lo}_to_{hi}"),
        ("ps_customer_message", customers // 10,
         "INSERT INTO ps_customer_message (id_customer_message, id_customer_thread, message, ip_address, "
         "user_agent, date_add, date_upd) SELECT seq, seq, 'Bonjour, où en est ma commande ?', '203.0.113.5', "
         "'Mozilla/5.0', '2022-01-01', '2022-01-01' FROM seq_{lo}_to_{hi}"),
        ("ps_mail", customers,
         "INSERT INTO ps_mail (id_mail, recipient, template, subject, id_lang, date_add) "
         "SELECT seq, CONCAT(LEFT(MD5(seq), 6), '.client', seq, '@bench.example'), 'order_conf', "
         "'Confirmation de commande', 1, '2023-01-01' FROM seq_{lo}_to_{hi}"),
    ]


def ensure_shop(customers: int, per_customer: int, rebuild: bool) -> str:
    name = f"dsarbot_bench_{customers}"
    url = f"{SERVER}/{name}?charset=utf8mb4"
    admin = create_engine(SERVER + "/")
    wanted = {"version": SCHEMA_VERSION, "customers": customers, "per_customer": per_customer}
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n"),
                              {"n": name}).scalar()
        if exists and not rebuild:
            try:
                done = conn.execute(text(f"SELECT meta FROM `{name}`.bench_meta WHERE done = 1")).scalar()
            except Exception:  # noqa: BLE001 - an interrupted build: start again
                done = None
            if done and json.loads(done) == wanted:
                log(f"reusing database {name}")
                return url
        log(f"building database {name} (this takes a while once; later runs reuse it)")
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    admin.dispose()
    schema = shared_dir() / "schemas" / "prestashop" / "mariadb.sql"
    with schema.open("rb") as handle:
        subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", name], stdin=handle, check=True)
    engine = create_engine(url)
    with engine.connect() as conn:
        conn.execute(text("SET SESSION sql_mode = ''"))
        conn.execute(text("SET SESSION unique_checks = 0"))
        for table, rows, sql in table_fills(customers, per_customer):
            started = time.monotonic()
            for lo in range(1, rows + 1, CHUNK):
                conn.execute(text(sql.format(lo=lo, hi=min(rows, lo + CHUNK - 1))))
                conn.commit()
            log(f"{table}: {rows:,} rows in {time.monotonic() - started:.0f} s")
        conn.execute(text("CREATE TABLE bench_meta (done TINYINT, meta TEXT)"))
        conn.execute(text("INSERT INTO bench_meta VALUES (1, :m)"), {"m": json.dumps(wanted)})
        conn.commit()
    engine.dispose()
    return url


# --- the event log -----------------------------------------------------------------------------
def ensure_log(path: Path, customers: int, size: int, target: int, rebuild: bool) -> int:
    """A JSON-lines log of about `size` bytes; returns how many lines belong to `target`."""
    meta_path = path.with_suffix(".meta.json")
    wanted = {"version": SCHEMA_VERSION, "customers": customers, "size": size, "target": target}
    if path.exists() and meta_path.exists() and not rebuild and json.loads(meta_path.read_text())["want"] == wanted:
        log(f"reusing {path} ({path.stat().st_size / 1e9:.2f} GB)")
        return json.loads(meta_path.read_text())["target_lines"]
    log(f"writing {path} ({size / 1e9:.2f} GB)")
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(42)
    pages = [f"https://boutique.example/produit/{i}" for i in range(500)]
    target_email, written, n, own = email_of(target), 0, 0, 0
    with path.open("w", encoding="utf-8") as handle:
        while written < size:
            lines = []
            for _ in range(10_000):
                n += 1
                if n % 100_000 == 0:  # the measured customer's own events, scattered through the file
                    customer, own = target, own + 1
                else:
                    customer = rng.randrange(1, customers + 1)
                event = {"event_id": f"ev{n}", "ts": f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
                         "type": "page_view", "url": pages[n % 500], "customer_id": customer,
                         "visitor_id": f"v{customer:x}", "ip": f"198.51.{n % 256}.{customer % 256}",
                         "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}
                if n % 20 == 0:  # logins carry the e-mail address
                    event["type"], event["email"] = "login", email_of(customer)
                lines.append(json.dumps(event))
            chunk = "\n".join(lines) + "\n"
            handle.write(chunk)
            written += len(chunk)
    meta_path.write_text(json.dumps({"want": wanted, "target_lines": own, "lines": n}))
    return own


# --- the measure -------------------------------------------------------------------------------
def measure(customers: int, per_customer: int, log_bytes: int, data_dir: Path, rebuild: bool) -> dict:
    target = customers // 2 + 7
    url = ensure_shop(customers, per_customer, rebuild)
    events = data_dir / f"events-{customers}.jsonl"
    own_events = ensure_log(events, customers, log_bytes, target, rebuild)
    config = PlaybooksConfig(register=str(REPO / "config" / "register.yaml"), directory=str(REPO / "playbooks"),
                             sources=[{"name": "shop", "type": "sql", "url": url, "preset": "prestashop"},
                                      {"name": "events", "type": "event_log", "path": str(events),
                                       "entity": "events", "id_field": "event_id",
                                       "match": {"email": "email", "customer_id": "customer_id"}}],
                             timeout_seconds=120)
    gatherer = build_gatherer(config, data_dir, utcnow, REPO)
    problems = {k: v for k, v in gatherer.check().items() if v}
    if problems:
        raise SystemExit(f"source check failed: {problems}")
    query = SubjectQuery(emails=[email_of(target)], case_id="bench")
    timings = []
    for _ in range(2):
        started = time.monotonic()
        result = gatherer.gather(query, ["access"])
        timings.append(time.monotonic() - started)
        if not result.complete:
            raise SystemExit(f"incomplete gathering: {result.failures}")
    orders = sum(1 for r in result.records if r.entity == "ps_orders")
    events_found = sum(1 for r in result.records if r.source == "events")
    assert orders == per_customer, f"expected {per_customer} orders, found {orders}"
    assert events_found >= own_events, f"expected at least {own_events} events of the customer, found {events_found}"
    return {"customers": customers, "orders": customers * per_customer, "log_gb": events.stat().st_size / 1e9,
            "records": len(result.records), "first_s": timings[0], "again_s": timings[1],
            "shop_ms": result.sources["shop"]["duration_ms"], "events_ms": result.sources["events"]["duration_ms"],
            "own_orders": orders, "own_events": events_found}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="the second, smaller shop")
    parser.add_argument("--orders-per-customer", type=int, default=10)
    parser.add_argument("--log-gb", type=float, default=1.0, help="event log size for the big shop (scaled down "
                                                                  "with the shop for the small one)")
    parser.add_argument("--data-dir", default=str(REPO / "bench-data"), help="where the event logs are written")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the databases and logs")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    results = []
    for customers in (args.customers, args.small):
        print(f"\n{customers:,} customers", flush=True)
        log_bytes = int(args.log_gb * 1e9 * customers / args.customers)
        results.append(measure(customers, args.orders_per_customer, log_bytes, data_dir, args.rebuild))
    print("\nTime to gather one customer's data (access playbook: PrestaShop database + event log)")
    for r in results:
        print(f"  {r['customers']:>9,} customers, {r['orders']:>10,} orders, event log {r['log_gb']:.2f} GB: "
              f"{r['records']} records ({r['own_orders']} orders, {r['own_events']} events) in "
              f"{r['first_s']:.2f} s (again: {r['again_s']:.2f} s); database {r['shop_ms']} ms, "
              f"event log {r['events_ms']} ms")
    big, small = results
    print(f"  database part: {big['shop_ms']} ms vs {small['shop_ms']} ms for a shop 10x smaller "
          "(follows the customer's own rows); event log part: linear in the log's size "
          f"({big['events_ms'] / max(big['log_gb'], 1e-9) / 1000:.1f} s per GB)")
    print(f"  target: <= 10 s -> {'met' if max(r['first_s'] for r in results) <= 10 else 'NOT met'}")
    print("  command: /work/main/.venv/bin/python bench/gather.py " + " ".join(argv or sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
