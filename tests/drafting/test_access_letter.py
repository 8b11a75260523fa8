"""The Art. 15 letter: every checklist item that applies, for this person, in French and English, in
the HTML and in the PDF's extracted text; items that do not apply are absent."""
from __future__ import annotations

import html
import re
import shutil
import subprocess

import pytest

from tests.drafting import demo_customer as demo
from tests.drafting.conftest import draft_for

#: checklist item (../shared/legal/art15_checklist.md) -> phrases the letter must contain for the demo customer
APPLIES = {
    "fr": {
        "letterhead": ["La Boutique Démo", "18 rue du Faubourg Saint-Denis", "dpo@boutique-demo.fr", "3 mars 2026",
                       "Camille Martin", "Objet : Votre demande d'accès à vos données personnelles"],
        "B1 confirmation": ["Traitons-nous des données personnelles vous concernant ?", "Oui.",
                            "Nous détenons 20 enregistrements"],
        "B2 the data": ["Vos données en un coup d'œil", "PrestaShop", "Brevo", "Navigation sur le site"],
        "B3 copy, free, electronic form": ["Cette première copie est gratuite",
                                           "formats électroniques d'usage courant", "-data.json", "-data-csv.zip"],
        "B4a purposes": ["Finalités", "Gestion de votre compte client", "Tenue de notre comptabilité",
                         "Suivi de la relation client"],
        "B4b categories": ["Les catégories de données personnelles concernées sont", "Identité et coordonnées",
                           "Préférences marketing"],
        "B4c recipients": ["Qui reçoit vos données", "Colissimo (La Poste)", "Brevo (Sendinblue SAS, France)"],
        "B4d retention": ["Durée de conservation", "10 ans (article L123-22 du Code de commerce)", "13 mois"],
        "B4e rights": ["rectifier", "effacer", "limiter", "opposer", "retirer votre consentement"],
        "B4f complaint": ["Votre droit d'introduire une réclamation",
                          "Commission nationale de l'informatique et des libertés (CNIL)",
                          "3 Place de Fontenoy, TSA 80715, 75334 Paris Cedex 07",
                          "https://www.cnil.fr/fr/adresser-une-plainte"],
        "B6/D rights of others": ["Informations concernant d'autres personnes", "article 15.4",
                                  "former un recours juridictionnel"],
    },
    "en": {
        "letterhead": ["La Boutique Démo", "18 rue du Faubourg Saint-Denis", "dpo@boutique-demo.fr", "3 March 2026",
                       "Camille Martin", "Subject: Your request for access to your personal data"],
        "B1 confirmation": ["Do we process personal data about you?", "Yes.", "We hold 20 records"],
        "B2 the data": ["Your data at a glance", "PrestaShop", "Brevo", "Browsing on the website"],
        "B3 copy, free, electronic form": ["This first copy is free of charge", "commonly used electronic formats",
                                           "-data.json", "-data-csv.zip"],
        "B4a purposes": ["Purposes", "Managing your customer account", "Keeping our accounts",
                         "Following up our customer relationship"],
        "B4b categories": ["The categories of personal data concerned are", "Identity and contact details",
                           "Marketing preferences"],
        "B4c recipients": ["Who receives your data", "Colissimo (La Poste)", "Brevo (Sendinblue SAS, France)"],
        "B4d retention": ["How long we keep it", "10 years (French Commercial Code, art. L123-22)", "13 months"],
        "B4e rights": ["rectify", "erase", "restrict", "object", "withdraw your consent"],
        "B4f complaint": ["Your right to complain", "Commission nationale de l'informatique et des libertés (CNIL)",
                          "3 Place de Fontenoy, TSA 80715, 75334 Paris Cedex 07",
                          "https://www.cnil.fr/fr/adresser-une-plainte"],
        "B6/D rights of others": ["Information about other people", "Article 15(4)", "seek a judicial remedy"],
    },
}

#: items that apply only when the register says so for data found: absent for the demo customer
CONDITIONAL = {
    "fr": {"B5 transfers": ["Transferts hors de l'Union européenne", "Clauses contractuelles types", "article 46"],
           "B4g source": ["Données que nous n'avons pas collectées auprès de vous", "Stripe Radar"],
           "B4h automated decisions": ["Décisions automatisées vous concernant", "Logique sous-jacente",
                                       "Conséquences envisagées"]},
    "en": {"B5 transfers": ["Transfers outside the European Union", "standard contractual clauses", "Article 46"],
           "B4g source": ["Data we did not collect from you", "Stripe Radar"],
           "B4h automated decisions": ["Automated decisions about you", "Logic involved", "Envisaged consequences"]},
}


def flat(text: str) -> str:
    return " ".join(text.split())


def visible_html(markup: str) -> str:
    markup = re.sub(r"<(style|svg)\b.*?</\1>", " ", markup, flags=re.S)
    return flat(html.unescape(re.sub(r"<[^>]+>", " ", markup)))


def missing(text: str, items: dict[str, list[str]]) -> dict[str, list[str]]:
    gaps = {item: [p for p in phrases if flat(p) not in text] for item, phrases in items.items()}
    return {k: v for k, v in gaps.items() if v}


@pytest.fixture(scope="module")
def drafted(request, drafted_fr, drafted_en):
    return {"fr": drafted_fr, "en": drafted_en}


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_letter_html_has_every_item_that_applies_and_nothing_else(drafted, lang):
    text = visible_html(drafted[lang].text("letter_html"))
    assert missing(text, APPLIES[lang]) == {}
    for item, phrases in CONDITIONAL[lang].items():
        assert phrases[0] not in text, f"{item} shown although no data found is concerned"


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_pdf_text_has_every_item_that_applies_and_the_annex_after_the_letter(drafted, lang, tmp_path):
    text = flat(drafted[lang].pdf_text(tmp_path))
    assert missing(text, APPLIES[lang]) == {}
    for item, phrases in CONDITIONAL[lang].items():
        assert phrases[0] not in text, item
    annex = {"fr": "Annexe : copie de vos données personnelles", "en": "Annex: a copy of your personal data"}[lang]
    closing = {"fr": "salutations distinguées", "en": "Yours sincerely"}[lang]
    assert text.index(closing) < text.index(annex), "the letter comes first, then the data annex"
    assert "12 rue des Lilas" in text.split(annex)[1], "the annex reproduces the records"
    assert re.search({"fr": r"Page 1 sur \d", "en": r"Page 1 of \d"}[lang], text), "pages are numbered"


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_transfers_sources_and_automated_decisions_appear_when_they_apply(tmp_path, lang):
    drafted = draft_for(tmp_path, lang, extra=True)
    for text in (visible_html(drafted.text("letter_html")), flat(drafted.pdf_text(tmp_path))):
        assert missing(text, CONDITIONAL[lang]) == {}
        assert missing(text, APPLIES[lang] | {"B1 confirmation": APPLIES[lang]["B1 confirmation"][:2]}) == {}


def test_text_body_says_the_same_as_the_html(drafted):
    text = flat(drafted["fr"].text("letter_text"))
    assert missing(text, APPLIES["fr"]) == {}
    assert "<" not in text and "&amp;" not in text


def test_chart_is_inline_svg_drawn_on_the_server(drafted):
    letter = drafted["en"].text("letter_html")
    assert "<script" not in letter.lower()
    svg = re.search(r"<svg.*?</svg>", letter, re.S).group(0)
    assert "<title>Records per system</title>" in svg and ">PrestaShop<" in svg and ">19<" in svg


def test_untrusted_values_are_escaped_in_the_letter_and_annex(tmp_path):
    hostile = demo._record("ps_customer_message", "901", {"message": "<script>alert(1)</script><img src=x>",
                                                          "date_add": "2025-10-01 10:00:00"})
    hostile_system = demo._record("ps_orders", "99", {"reference": "R"}, system="<b>Evil</b>")
    drafted = draft_for(tmp_path, "en", more=[hostile, hostile_system])
    for role in ("letter_html", "html"):
        page = drafted.text(role)
        assert "<script>alert" not in page and "<img src=x>" not in page and "<b>Evil</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in drafted.text("html")


def test_unknown_language_falls_back_to_english(tmp_path):
    drafted = draft_for(tmp_path, "de")
    assert drafted.draft["language"] == "en"
    assert "Do we process personal data about you?" in drafted.text("letter_html")


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_first_pdf_page_renders_as_a_letter(drafted, lang, tmp_path):
    """Renders page 1 to PNG (kept at /tmp/letter-<lang>-p1.png for a human look)."""
    pdf = tmp_path / "answer.pdf"
    pdf.write_bytes(drafted[lang].file("pdf"))
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "p")], check=True)
    png = next(tmp_path.glob("p*.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    shutil.copy(png, f"/tmp/letter-{lang}-p1.png")
    first_page = flat(subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"], capture_output=True,
                                     text=True, check=True).stdout)
    for phrase in APPLIES[lang]["letterhead"] + [drafted[lang].case.ref]:
        assert phrase in first_page, f"page 1 lacks {phrase!r}"
