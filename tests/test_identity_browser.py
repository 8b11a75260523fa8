"""The request form, the verify page and the portal driven in a real browser (Debian's Chromium via Playwright),
with JavaScript off (everything must work without it) and on."""
from __future__ import annotations

import io
import re

import pyzipper
import pytest

from bot.models import State
from tests.identity_support import Clock, make_service, run_outbox
from tests.servers.web import running_web

ALICE = "alice@shop.example"


@pytest.fixture
def live(tmp_path):
    service, mailer, _ = make_service(tmp_path, Clock(), {ALICE: {"order_reference": "A1001"}})
    with running_web(service) as server:
        yield service, mailer, server
    service.close()


@pytest.fixture
def no_js_page(browser):
    context = browser.new_context(java_script_enabled=False, locale="fr-FR")
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def local(server, link: str) -> str:
    return server.url(re.sub(r"^https?://[^/]+", "", link))


def test_form_and_code_without_javascript(live, no_js_page):
    service, mailer, server = live
    p = no_js_page
    p.goto(server.url("/request"))
    assert p.locator("html").get_attribute("lang") == "fr"  # from the browser's language
    # Submit empty first: the error summary links to the fields, without any script.
    p.get_by_role("button", name="Envoyer ma demande").click()
    summary = p.locator(".error-summary")
    assert summary.is_visible() and "Il y a un problème" in summary.text_content()
    assert p.locator("#email").get_attribute("aria-invalid") == "true"
    p.get_by_label("Adresse e-mail (obligatoire)").fill(ALICE)
    p.get_by_label("Numéro de commande").fill("A1001")
    p.get_by_label("Accès").check()
    p.get_by_label("Effacement").check()
    p.get_by_label("Précisions éventuelles").fill("Merci")
    p.get_by_role("button", name="Envoyer ma demande").click()
    assert p.get_by_role("heading", name="Demande reçue").is_visible()
    assert "adresse e-mail que nous avons dans nos fichiers" in p.content()
    run_outbox(service)
    (case,) = service.cases.all()
    assert case.rights == ["access", "erasure"] and case.language == "fr"
    p.goto(local(server, mailer.last_link(ALICE)))
    p.get_by_label("Code à usage unique").fill(mailer.wrong_code(ALICE))
    p.get_by_role("button", name="Confirmer").click()
    assert "Ce code n'est pas le bon" in p.locator(".error-summary").text_content()
    p.get_by_label("Code à usage unique").fill(mailer.last_code(ALICE))
    p.get_by_role("button", name="Confirmer").click()
    assert p.get_by_role("heading", name="Identité confirmée").is_visible()
    assert service.cases.get(case.id).verification["verified_email"] == ALICE


def test_form_with_javascript_in_english_and_third_party(live, page):
    service, mailer, server = live
    page.goto(server.url("/request?lang=en"))
    page.get_by_label("Email address (required)").fill("lawyer@firm.example")
    page.get_by_label("Access", exact=False).first.check()
    page.get_by_label("I am making this request on behalf of someone else").check()
    page.get_by_label("Your relationship to the person").select_option("lawyer")
    page.get_by_label("Name of the person concerned").fill("Alice Martin")
    page.get_by_label("Order number").fill("A1001")
    page.get_by_label("Proof of your authority").set_input_files(
        files=[{"name": "mandate.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 mandate"}])
    page.get_by_role("button", name="Send my request").click()
    assert page.get_by_role("heading", name="Request received").is_visible()
    run_outbox(service)
    (case,) = service.cases.all()
    assert case.third_party and case.requester.email == "lawyer@firm.example"
    assert len(case.verification["mandate"]["documents"]) == 1
    assert [m.to for m in mailer.sent] == ["lawyer@firm.example"]


def test_portal_download_in_the_browser(live, page):
    service, mailer, server = live
    from tests.test_delivery import approved_case

    case = approved_case(service, mailer)
    run_outbox(service)
    assert service.cases.get(case.id).state == State.DELIVERED
    portal = local(server, mailer.last_link(ALICE, "portal"))
    page.goto(portal)
    page.get_by_role("button", name="Send me a code").click()
    run_outbox(service)
    page.get_by_label("One-time code").fill(mailer.last_code(ALICE))
    page.get_by_role("button", name="Open").click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download my answer").click()
    download = info.value
    data = open(download.path(), "rb").read()
    with pyzipper.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["answer.pdf", "data.json"]
    # The button was for one download: reloading the page asks for a new code.
    page.goto(portal)
    assert page.get_by_role("button", name="Send me a code").is_visible()
    assert [e["action"] for e in service.audit.events(case.id)].count("download") == 1
