"""The other letters (identity, clarification, extension, refusal, fee) from the same templates and layout."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from bot.drafting import KINDS, LetterRefused, letter_context, render_letter
from bot.drafting.letters import languages
from bot.models import Person
from tests.drafting.conftest import make_service, verified_case

RECEIVED = datetime(2026, 1, 30, 9, 0, tzinfo=timezone.utc)  # month one ends on 28 Feb (no 30 Feb)


@pytest.fixture
def case(service):
    return service.cases.open(received_at=RECEIVED, rights=["access"], language="fr", channel="email",
                              requester=Person(email="alex@example.org", name="Alex Petit"))


def ctx(service, today: date, **extra):
    return {"config": service.config, "today": today, **extra}


def test_every_kind_exists_in_every_language():
    from bot.drafting.letters import TEMPLATES

    for language in languages():
        for kind in KINDS:
            assert (TEMPLATES / language / f"{kind}.html").exists(), f"{language}/{kind}.html"
    assert {"fr", "en"} <= set(languages())


def test_extension_notice_within_the_first_month_gives_reasons_and_the_new_date(service, case):
    subject, text, html = render_letter("extension_notice", case, ctx(
        service, date(2026, 2, 28), reasons="Vos données sont réparties dans 14 systèmes <dont un archivé>."))
    flat = " ".join(text.split())
    assert "prolongation" in subject.lower()
    assert "14 systèmes <dont un archivé>" in flat and "&lt;dont un archivé&gt;" in html
    assert "au plus tard le 30 avril 2026" in flat  # 3 months from 30 Jan, Regulation 1182/71
    assert "article 12.3" in flat and "CNIL" in flat
    assert html.count("La Boutique Démo") >= 2 and case.ref in html


def test_extension_notice_refused_once_the_first_month_has_ended(service, case):
    with pytest.raises(LetterRefused, match="2026-02-28"):
        render_letter("extension_notice", case, ctx(service, date(2026, 3, 1), reasons="complex"))


def test_extension_notice_needs_reasons(service, case):
    with pytest.raises(ValueError, match="reasons"):
        render_letter("extension_notice", case, ctx(service, date(2026, 2, 2), reasons=""))


@pytest.mark.parametrize("kind, extra, must", [
    ("refusal", {"reasons": "Cinquième demande identique en deux mois.", "grounds": "excessive"},
     ["manifestement excessive", "article 12.5.b", "Cinquième demande identique", "CNIL",
      "3 Place de Fontenoy", "recours juridictionnel", "article 79"]),
    ("refusal", {"reasons": "La demande vise un autre client.", "grounds": "unfounded"},
     ["manifestement infondée", "La demande vise un autre client.", "recours juridictionnel"]),
    ("fee", {"reasons": "Troisième copie demandée.", "fee": "15,00 €"},
     ["15,00 €", "article 12.5.a", "Troisième copie demandée.", "retirer votre demande", "recours juridictionnel",
      "CNIL"]),
])
def test_refusal_and_fee_give_reasons_complaint_and_judicial_remedy(service, case, kind, extra, must):
    earlier = [{"ref": "DSR-260110-ABCDE", "received": "2026-01-10", "state": "delivered"}]
    _, text, _ = render_letter(kind, case, ctx(service, date(2026, 2, 2), earlier_requests=earlier, **extra))
    flat = " ".join(text.split())
    for phrase in must + ["DSR-260110-ABCDE"]:
        assert phrase in flat, phrase


def test_identity_request_never_depends_on_data_held(service, case):
    """SECURITY.md rule 5: same text whether or not we hold data; it only knows the case and the request."""
    other = service.cases.open(received_at=RECEIVED, rights=["access"], language="fr", channel="email",
                               requester=case.requester)
    one = render_letter("identity_request", case, ctx(service, date(2026, 1, 30)))
    two = render_letter("identity_request", other, ctx(service, date(2026, 1, 30)))
    assert one[0] == two[0] and one[1].replace(case.ref, "REF") == two[1].replace(other.ref, "REF")
    assert "code" in one[1] and "article 12.6" in " ".join(one[1].split())


def test_clarification_request_lists_the_questions(service, case):
    subject, text, _ = render_letter("clarification_request", case, ctx(
        service, date(2026, 2, 2), questions=["Quelle période vous intéresse ?", "Quels magasins ?"]))
    assert "Quelle période vous intéresse ?" in text and "considérant 63" in " ".join(text.split())


def test_english_letters_and_language_fallback(tmp_path):
    service = make_service(tmp_path, jurisdiction={"country": "GB", "subdivision": "ENG", "timezone": "Europe/London",
                                                   "authority": "ICO"})
    case = verified_case(service, "pt", received=datetime(2026, 2, 2, 9, tzinfo=timezone.utc))
    subject, text, html = render_letter("refusal", case, letter_context(service, reasons="Repeated.",
                                                                        grounds="excessive"))
    assert subject == "Your request about your personal data: our decision"
    flat = " ".join(text.split())
    assert "Information Commissioner's Office (ICO)" in flat and "Wycliffe House" in flat
    assert "https://ico.org.uk/make-a-complaint/" in flat and "judicial remedy" in flat
    assert '<html lang="en">' in html


def test_unknown_kind_and_unknown_authority(service, case, tmp_path):
    with pytest.raises(ValueError, match="unknown letter kind"):
        render_letter("apology", case, ctx(service, date(2026, 2, 2)))
    from integrations.base import Misconfigured

    with pytest.raises(Misconfigured, match="authority 'XYZ'"):
        make_service(tmp_path / "other", jurisdiction={"authority": "XYZ"})
