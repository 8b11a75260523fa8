"""The demo's embedded shop: a small PrestaShop-like SQLite database, a consent log, browsing events, a loyalty export.

`seed_demo_shop(directory, now)` writes them and returns the `[playbooks] sources` that read them,
so `dsarbot demo` runs the whole flow without outside systems. All the demo people's personal data
is in DEMO_CUSTOMERS (and OTHER_PERSON), in this module only: tests grep logs for these values.
Two customers share a name and a phone on purpose; a support message quotes another person.
"""
from __future__ import annotations

import csv
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

SCHEMA = Path(__file__).with_name("demo_shop.sql")

#: Someone who is not a customer, quoted in Camille Martin's support message (the draft redacts her).
OTHER_PERSON = {"name": "Julie Bernard", "email": "julie.bernard@example.fr", "phone": "06 98 76 54 32"}

#: The demo shop's customers. Days are "days before now" so the demo always looks recent.
DEMO_CUSTOMERS: list[dict[str, Any]] = [
    {"id": 1, "gender": 2, "firstname": "Camille", "lastname": "Martin", "email": "camille.martin@example.fr",
     "birthday": "1988-04-17", "phone": "06 12 34 56 78", "language": "fr", "guest": False, "newsletter": True,
     "ip": "203.0.113.24", "visitor_id": "v-7f3a9c", "password_hash": "$2y$10$Qm7yD1c3bNq0kz3eYh6w5uO1oZpK8v9",
     "address": {"address1": "12 rue des Lilas", "postcode": "69003", "city": "Lyon", "country": 8},
     "orders": [{"id": 101, "reference": "KXQBRNTWE", "days": 95, "card": "4970101234567890", "items": [
         ("Théière en fonte 1,2 L", 1, "49.90"), ("Thé vert Sencha bio 100 g", 2, "9.50")],
         "tracking": "6A12345678901"},
         {"id": 102, "reference": "PLMZDSAQW", "days": 20, "card": "4970101234567890", "items": [
             ("Tasse en grès émaillé", 4, "12.00")], "tracking": "6A98765432109"}],
     "support": {"days": 18, "subject": "Colis livré chez ma voisine",
                 "message": ("Bonjour, mon colis PLMZDSAQW a été déposé chez ma voisine Julie Bernard "
                             "(julie.bernard@example.fr, 06 98 76 54 32) qui me l'a rapporté ouvert. "
                             "Pouvez-vous vérifier que rien ne manque ? Camille Martin")},
     "loyalty": {"member_id": "FID-0001", "points": 420, "tier": "Argent"}},
    # Same name and phone as customer 1 (a relative in the same household): a different person.
    {"id": 2, "gender": 2, "firstname": "Camille", "lastname": "Martin", "email": "camille.m@example.com",
     "birthday": "1961-09-02", "phone": "06 12 34 56 78", "language": "fr", "guest": False, "newsletter": False,
     "ip": "198.51.100.7", "visitor_id": "v-21b0e4", "password_hash": "$2y$10$Zr4bQ8s2LmTn6yXcVb1aPeW3dFgH5jK",
     "address": {"address1": "12 rue des Lilas", "postcode": "69003", "city": "Lyon", "country": 8},
     "orders": [{"id": 103, "reference": "HYTRGBNMK", "days": 40, "card": "5132004455667788", "items": [
         ("Coffret découverte 6 thés", 1, "34.00")], "tracking": "6A55555555555"}],
     "support": None, "loyalty": None},
    # Sam first checked out as a guest, then created an account with the same e-mail: two rows.
    {"id": 3, "gender": 1, "firstname": "Sam", "lastname": "Jones", "email": "sam.jones@example.co.uk",
     "birthday": None, "phone": "+44 7700 900123", "language": "en", "guest": True, "newsletter": False,
     "ip": "192.0.2.45", "visitor_id": "v-c0ffee", "password_hash": "",
     "address": {"address1": "221 Baker Street", "postcode": "NW1 6XE", "city": "London", "country": 17},
     "orders": [{"id": 104, "reference": "QWERTYUIO", "days": 200, "card": "4000056655665556", "items": [
         ("Matcha ceremonial grade 30 g", 1, "24.00")], "tracking": "CX123456789FR"}],
     "support": None, "loyalty": None},
    {"id": 4, "gender": 1, "firstname": "Sam", "lastname": "Jones", "email": "sam.jones@example.co.uk",
     "birthday": "1990-12-01", "phone": "+44 7700 900123", "language": "en", "guest": False, "newsletter": True,
     "ip": "192.0.2.45", "visitor_id": "v-c0ffee", "password_hash": "$2y$10$Lk9sPq2WmXn4bVc7zA1sDe5fGh8jK0l",
     "address": {"address1": "221 Baker Street", "postcode": "NW1 6XE", "city": "London", "country": 17},
     "orders": [{"id": 105, "reference": "ASDFGHJKL", "days": 30, "card": "4000056655665556", "items": [
         ("Théière en verre 800 ml", 1, "29.00")], "tracking": "CX987654321FR"}],
     "support": None, "loyalty": {"member_id": "FID-0002", "points": 80, "tier": "Bronze"}},
    # A guest only: the support thread can be found by e-mail alone.
    {"id": 5, "gender": 1, "firstname": "Léo", "lastname": "Dubois", "email": "leo.dubois@example.fr",
     "birthday": None, "phone": "07 11 22 33 44", "language": "fr", "guest": True, "newsletter": False,
     "ip": "203.0.113.99", "visitor_id": "v-0dd5e1", "password_hash": "",
     "address": {"address1": "3 place du Capitole", "postcode": "31000", "city": "Toulouse", "country": 8},
     "orders": [{"id": 106, "reference": "ZXCVBNMAZ", "days": 10, "card": "4970109876543210", "items": [
         ("Infuseur inox", 2, "6.50")], "tracking": "6A44444444444"}],
     "support": {"days": 5, "subject": "Facture", "message": "Bonjour, pourriez-vous m'envoyer la facture ? Léo"},
     "loyalty": None},
    {"id": 6, "gender": 2, "firstname": "Inès", "lastname": "Roux", "email": "ines.roux@example.fr",
     "birthday": "1979-06-23", "phone": "06 55 44 33 22", "language": "fr", "guest": False, "newsletter": True,
     "ip": "198.51.100.61", "visitor_id": "v-a11ce5", "password_hash": "$2y$10$Tg5hYj6uKi7oLp8aQs9dFg0hJk1lZx2",
     "address": {"address1": "8 allée des Pins", "postcode": "33000", "city": "Bordeaux", "country": 8},
     "orders": [], "support": None,
     "loyalty": {"member_id": "FID-0003", "points": 1250, "tier": "Or"}},
]

#: Subscribed to the newsletter without an account (the newsletter module's table).
NEWSLETTER_ONLY = [{"email": "emily.clarke@example.com", "ip": "192.0.2.200", "days": 60}]

DEMO_TABLES = ["ps_customer", "ps_address", "ps_orders", "ps_order_detail", "ps_order_history", "ps_order_carrier",
               "ps_order_payment", "ps_cart", "ps_cart_product", "ps_customer_thread", "ps_customer_message",
               "ps_guest", "ps_connections", "ps_mail", "ps_emailsubscription"]


def _at(now: datetime, days: float) -> str:
    return (now - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")


def _ip_number(ip: str) -> int:
    a, b, c, d = (int(x) for x in ip.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def _seed_database(path: Path, now: datetime) -> None:
    db = sqlite3.connect(path)
    try:
        db.executescript(SCHEMA.read_text(encoding="utf-8"))
        detail_id = history_id = 1
        for c in DEMO_CUSTOMERS:
            cid, joined = c["id"], _at(now, 400 - c["id"] * 30)
            db.execute("INSERT INTO ps_customer (id_customer, id_gender, id_lang, firstname, lastname, email, passwd,"
                       " birthday, newsletter, newsletter_date_add, ip_registration_newsletter, optin, secure_key,"
                       " is_guest, date_add, date_upd) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (cid, c["gender"], 1 if c["language"] == "fr" else 2, c["firstname"], c["lastname"],
                        c["email"], c["password_hash"], c["birthday"], int(c["newsletter"]),
                        joined if c["newsletter"] else None, c["ip"] if c["newsletter"] else None,
                        int(c["newsletter"]), f"{cid:032x}", int(c["guest"]), joined, joined))
            a = c["address"]
            db.execute("INSERT INTO ps_address (id_address, id_country, id_customer, alias, lastname, firstname,"
                       " address1, postcode, city, phone_mobile, date_add, date_upd) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                       (cid, a["country"], cid, "Mon adresse" if c["language"] == "fr" else "My address",
                        c["lastname"], c["firstname"], a["address1"], a["postcode"], a["city"], c["phone"],
                        joined, joined))
            guest_id = 100 + cid
            db.execute("INSERT INTO ps_guest (id_guest, id_operating_system, id_web_browser, id_customer,"
                       " accept_language) VALUES (?,?,?,?,?)", (guest_id, 4, 2, cid, c["language"]))
            db.execute("INSERT INTO ps_connections (id_guest, id_page, ip_address, date_add, http_referer)"
                       " VALUES (?,?,?,?,?)", (guest_id, 1, _ip_number(c["ip"]), _at(now, 3 + cid),
                                               "https://www.qwant.com/"))
            for order in c["orders"]:
                oid, when = order["id"], _at(now, order["days"])
                total = sum(q * float(p) for _, q, p in order["items"]) + 4.90
                db.execute("INSERT INTO ps_cart (id_cart, id_customer, id_guest, date_add, date_upd)"
                           " VALUES (?,?,?,?,?)", (oid, cid, guest_id, when, when))
                db.execute("INSERT INTO ps_orders (id_order, reference, id_carrier, id_lang, id_customer, id_cart,"
                           " id_address_delivery, id_address_invoice, current_state, secure_key, payment, module,"
                           " total_paid_tax_incl, total_shipping_tax_incl, invoice_number, date_add, date_upd)"
                           " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           (oid, order["reference"], 1, 1, cid, oid, cid, cid, 5, f"{oid:032x}", "Carte bancaire",
                            "stripe_official", f"{total:.2f}", "4.90", oid, when, when))
                for name, quantity, price in order["items"]:
                    db.execute("INSERT INTO ps_order_detail (id_order_detail, id_order, product_id, product_name,"
                               " product_quantity, total_price_tax_incl) VALUES (?,?,?,?,?,?)",
                               (detail_id, oid, detail_id, name, quantity, f"{quantity * float(price):.2f}"))
                    db.execute("INSERT INTO ps_cart_product (id_cart, id_product, quantity, date_add)"
                               " VALUES (?,?,?,?)", (oid, detail_id, quantity, when))
                    detail_id += 1
                for state, delay in ((2, 0), (4, 1), (5, 3)):
                    db.execute("INSERT INTO ps_order_history (id_order_history, id_order, id_order_state, date_add)"
                               " VALUES (?,?,?,?)", (history_id, oid, state, _at(now, order["days"] - delay)))
                    history_id += 1
                db.execute("INSERT INTO ps_order_carrier (id_order, id_carrier, tracking_number, date_add)"
                           " VALUES (?,?,?,?)", (oid, 1, order["tracking"], _at(now, order["days"] - 1)))
                db.execute("INSERT INTO ps_order_payment (order_reference, amount, payment_method, transaction_id,"
                           " card_number, card_brand, card_expiration, card_holder, date_add)"
                           " VALUES (?,?,?,?,?,?,?,?,?)",
                           (order["reference"], f"{total:.2f}", "Carte bancaire", f"pi_demo{oid}", order["card"],
                            "visa" if order["card"].startswith("4") else "mastercard", "09/2027",
                            f"{c['firstname']} {c['lastname']}".upper(), when))
                db.execute("INSERT INTO ps_mail (recipient, template, subject, id_lang, date_add) VALUES (?,?,?,?,?)",
                           (c["email"], "order_conf", f"Confirmation de commande {order['reference']}", 1, when))
            if c["support"]:
                s = c["support"]
                thread = 500 + cid
                # Guests' threads carry no customer id: only the e-mail finds them.
                db.execute("INSERT INTO ps_customer_thread (id_customer_thread, id_lang, id_contact, id_customer,"
                           " email, token, date_add, date_upd) VALUES (?,?,?,?,?,?,?,?)",
                           (thread, 1, 2, None if c["guest"] else cid, c["email"], f"tk{thread}",
                            _at(now, s["days"]), _at(now, s["days"])))
                db.execute("INSERT INTO ps_customer_message (id_customer_thread, message, ip_address, user_agent,"
                           " date_add, date_upd) VALUES (?,?,?,?,?,?)",
                           (thread, s["message"], c["ip"], "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0",
                            _at(now, s["days"]), _at(now, s["days"])))
                db.execute("INSERT INTO ps_customer_message (id_customer_thread, id_employee, message, date_add,"
                           " date_upd, private) VALUES (?,?,?,?,?,?)",
                           (thread, 1, "Bonjour, nous vérifions avec le transporteur et revenons vers vous.",
                            _at(now, s["days"] - 1), _at(now, s["days"] - 1), 0))
        for sub in NEWSLETTER_ONLY:
            db.execute("INSERT INTO ps_emailsubscription (email, newsletter_date_add, ip_registration_newsletter,"
                       " active, id_lang) VALUES (?,?,?,?,?)", (sub["email"], _at(now, sub["days"]), sub["ip"], 1, 2))
        db.commit()
    finally:
        db.close()


def _write_consent_log(path: Path, now: datetime) -> None:
    fields = ["consent_id", "email", "visitor_id", "purpose", "choice", "given_at", "notice_version", "ip_address"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        n = 1
        for c in DEMO_CUSTOMERS:
            for purpose, choice, days in (("analytics", "accepted", 90), ("advertising", "refused", 90),
                                          ("newsletter", "accepted" if c["newsletter"] else "refused", 60)):
                writer.writerow({"consent_id": f"cns-{n:04d}", "email": c["email"], "visitor_id": c["visitor_id"],
                                 "purpose": purpose, "choice": choice, "given_at": _at(now, days + c["id"]),
                                 "notice_version": "2024-03", "ip_address": c["ip"]})
                n += 1
        # Camille withdrew her analytics consent later.
        writer.writerow({"consent_id": f"cns-{n:04d}", "email": DEMO_CUSTOMERS[0]["email"],
                         "visitor_id": DEMO_CUSTOMERS[0]["visitor_id"], "purpose": "analytics", "choice": "withdrawn",
                         "given_at": _at(now, 7), "notice_version": "2024-03", "ip_address": DEMO_CUSTOMERS[0]["ip"]})


def _write_events(path: Path, now: datetime) -> None:
    pages = ["/", "/the-vert", "/theieres", "/panier", "/commande", "/mon-compte"]
    with path.open("w", encoding="utf-8") as handle:
        n = 1
        for c in DEMO_CUSTOMERS:
            for i, page in enumerate(pages):
                logged_in = i >= 3 and not c["guest"]
                event = {"event_id": f"evt-{n:05d}", "ts": _at(now, 12 - i * 0.01 + c["id"]), "type": "page_view",
                         "url": f"https://boutique-demo.example{page}", "visitor_id": c["visitor_id"],
                         "customer_id": c["id"] if logged_in else None, "ip": c["ip"],
                         "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15"}
                handle.write(json.dumps(event, ensure_ascii=False) + "\n")
                n += 1
            if not c["guest"]:
                handle.write(json.dumps({"event_id": f"evt-{n:05d}", "ts": _at(now, 2 + c["id"]), "type": "login",
                                         "email": c["email"], "customer_id": c["id"], "visitor_id": c["visitor_id"],
                                         "ip": c["ip"]}) + "\n")
                n += 1


def _write_loyalty(path: Path, now: datetime) -> None:
    fields = ["member_id", "email", "customer_id", "points", "tier", "joined_on", "last_earned_on"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for c in DEMO_CUSTOMERS:
            if c["loyalty"]:
                writer.writerow({**c["loyalty"], "email": c["email"], "customer_id": c["id"],
                                 "joined_on": _at(now, 300)[:10], "last_earned_on": _at(now, 20)[:10]})


def seed_demo_shop(directory: Path, now: datetime) -> list[dict[str, Any]]:
    """Write the demo shop's systems into `directory` (replacing them) and return its `[playbooks] sources`."""
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "shop.sqlite"
    database.unlink(missing_ok=True)
    _seed_database(database, now)
    _write_consent_log(directory / "consents.csv", now)
    _write_events(directory / "events.jsonl", now)
    _write_loyalty(directory / "loyalty.csv", now)
    return demo_sources(directory)


def demo_sources(directory: Path) -> list[dict[str, Any]]:
    """The `[playbooks] sources` of the demo shop (names match config/register.yaml)."""
    directory = directory.resolve()
    return [
        {"name": "shop", "type": "sql", "url": f"sqlite:///{directory / 'shop.sqlite'}", "preset": "prestashop",
         "tables": DEMO_TABLES, "system": "PrestaShop"},
        {"name": "consent", "type": "consent_log", "path": str(directory / "consents.csv"), "preset": "generic",
         "system": "Axeptio"},
        {"name": "events", "type": "event_log", "path": str(directory / "events.jsonl"), "entity": "events",
         "id_field": "event_id", "system": "Matomo",
         "match": {"email": "email", "customer_id": "customer_id", "visitor_id": "visitor_id"}},
        {"name": "loyalty", "type": "script", "script": "loyalty_points.py", "entities": ["loyalty_accounts"],
         "accepts": ["email", "customer_id"], "system": "Programme de fidélité",
         "options": {"path": str(directory / "loyalty.csv")}},
    ]
