"""The public request form: accessible, CSRF-protected, throttled, and blind to who is a customer (rule 5)."""
from __future__ import annotations

import re
import statistics
import time
from html.parser import HTMLParser

import pytest

from bot.models import State
from bot.web.app import create_app
from tests.identity_support import Clock, make_service, run_outbox

ALICE = "alice@shop.example"


class SlowForCustomers:
    """A lookup that takes visibly longer when it finds someone: a request path that looked up
    addresses synchronously would leak who is a customer through timing."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls = 0

    def contacts_on_file(self, email, identifiers):
        self.calls += 1
        found = self.inner.contacts_on_file(email, identifiers)
        if found:
            time.sleep(0.05)
        return found


@pytest.fixture
def env(tmp_path):
    clock = Clock()
    service, mailer, contacts = make_service(tmp_path, clock, {ALICE: {"order_reference": "A1001"}},
                                             form={"max_per_address_per_hour": 100, "max_per_ip_per_hour": 1000})
    app = create_app(service)
    yield service, mailer, contacts, app, clock
    service.close()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def form_page(client, lang="en"):
    page = client.get(f"/request?lang={lang}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    return html, csrf_of(html), re.search(r'name="submission" value="([^"]+)"', html).group(1)


def post(client, email, *, lang="en", rights=("access",), submission=None, **extra):
    _, token, nonce = form_page(client, lang)
    data = {"csrf_token": token, "submission": submission or nonce, "lang": lang, "email": email,
            "rights": list(rights), "text": "Please send me my data", **extra}
    return client.post(f"/request?lang={lang}", data=data, content_type="multipart/form-data")


def test_form_creates_a_case_with_the_ticked_rights_and_language(env):
    service, mailer, _, app, _ = env
    client = app.test_client()
    response = post(client, ALICE, lang="fr", rights=("erasure", "objection"), order="A1001", name="Alice")
    assert response.status_code == 303 and response.headers["Location"].endswith("/request/sent?lang=fr")
    (case,) = service.cases.all()
    assert case.channel == "form" and case.language == "fr"
    assert case.rights == ["erasure", "objection"]
    assert case.classification["cues"] == ["form: ticked by the requester"]
    assert case.subject.identifiers == {"order_reference": "A1001"}
    run_outbox(service)
    assert service.cases.get(case.id).state == State.AWAITING_IDENTITY
    assert [m.to for m in mailer.sent] == [ALICE]
    assert "Votre code" in mailer.sent[0].subject


def test_same_bytes_and_same_time_for_customer_and_stranger(env):
    service, mailer, contacts, app, _ = env
    slow = SlowForCustomers(contacts)
    service.components["gatherer"] = slow
    client = app.test_client()
    post(client, "warm@up.example")  # first request compiles templates
    timings = {ALICE: [], "stranger@nowhere.example": []}
    responses = {}
    for round_ in range(12):
        for email in timings:
            _, token, nonce = form_page(client)
            data = {"csrf_token": token, "submission": nonce, "lang": "en", "email": email, "rights": ["access"],
                    "order": "A1001" if round_ % 2 else "", "text": "Please send me my data"}
            started = time.perf_counter()
            response = client.post("/request?lang=en", data=data, content_type="multipart/form-data")
            timings[email].append(time.perf_counter() - started)
            responses.setdefault(email, set()).add((response.status_code, response.get_data(),
                                                    tuple(sorted((k, v) for k, v in response.headers.items()
                                                                 if k != "Set-Cookie"))))
    assert slow.calls == 0, "the address lookup must not run while the requester waits"
    assert len(responses[ALICE]) == 1 and responses[ALICE] == responses["stranger@nowhere.example"]
    customer, stranger = (statistics.median(t) for t in timings.values())
    assert abs(customer - stranger) < max(0.02, 0.3 * min(customer, stranger)), (customer, stranger)
    # The confirmation page is one page for everyone.
    assert client.get("/request/sent?lang=en").get_data() == app.test_client().get("/request/sent?lang=en").get_data()
    # In the background, both get one code mail from the same template.
    run_outbox(service, rounds=10)
    assert slow.calls > 0

    def skeleton(mail):
        text = re.sub(r"DSR-\d{6}-\w{5}", "REF", mail.text)
        text = re.sub(r"/verify/[A-Za-z0-9_-]+", "/verify/TOKEN", text)
        return mail.subject.split("]")[1], re.sub(r"\d{6,}", "CODE", text)

    assert skeleton(mailer.to(ALICE)[0]) == skeleton(mailer.to("stranger@nowhere.example")[0])


def test_verify_page_is_the_same_for_customer_and_stranger(env):
    service, mailer, _, app, _ = env
    client = app.test_client()
    post(client, ALICE)
    post(client, "stranger@nowhere.example")
    run_outbox(service)
    pages = []
    for address in (ALICE, "stranger@nowhere.example"):
        link = mailer.last_link(address)
        html = client.get(link.replace("http://dsar.test", "")).get_data(as_text=True)
        pages.append(re.sub(r"DSR-\d{6}-\w{5}|/verify/[A-Za-z0-9_-]+|value=\"[^\"]+\"", "X", html))
    assert pages[0] == pages[1]


def test_throttled_per_address_and_per_ip_with_a_clear_message(tmp_path):
    service, _, _, = make_service(tmp_path, Clock(), {}, form={"max_per_address_per_hour": 2,
                                                               "max_per_ip_per_hour": 4})[:3]
    client = create_app(service).test_client()
    assert [post(client, "a@x.example").status_code for _ in range(3)] == [303, 303, 429]
    throttled = post(client, "a@x.example", lang="fr")
    assert throttled.status_code == 429 and "trop de demandes" in throttled.get_data(as_text=True)
    assert int(throttled.headers["Retry-After"]) > 0
    assert post(client, "b@x.example").status_code == 429  # the IP's 4 submissions are used up
    assert len(service.cases.all()) == 2
    service.close()


def test_csrf_is_required(env):
    service, _, _, app, _ = env
    client = app.test_client()
    form_page(client)
    response = client.post("/request", data={"email": ALICE, "rights": ["access"]})
    assert response.status_code == 400
    assert service.cases.all() == []


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.controls, self.labels, self.fieldsets, self.legends = [], set(), 0, 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append(a.get("id"))
        if tag == "label":
            self.labels.add(a.get("for"))
        self.fieldsets += tag == "fieldset"
        self.legends += tag == "legend"


@pytest.mark.parametrize("lang,title", [("en", "Request about your personal data"),
                                        ("fr", "Demande concernant vos données personnelles")])
def test_form_is_accessible_in_both_languages(env, lang, title):
    _, _, _, app, _ = env
    client = app.test_client()
    html, _, _ = form_page(client, lang)
    assert f'<html lang="{lang}">' in html and title in html
    parser = _Inputs()
    parser.feed(html)
    assert parser.controls and all(c in parser.labels for c in parser.controls), "every control has a label"
    assert parser.fieldsets >= 3 and parser.legends == parser.fieldsets
    assert "<script" not in html  # works without JavaScript
    # A wrong submission shows an error summary linking to each field, and keeps what was typed.
    response = post(client, "not-an-address", lang=lang, rights=(), name="Zoé")
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'class="error-summary" role="alert"' in body
    assert 'href="#email"' in body and 'href="#rights"' in body
    assert 'aria-invalid="true"' in body and 'value="Zoé"' in body


def test_third_party_request_records_requester_and_subject_separately(env):
    service, mailer, _, app, _ = env
    client = app.test_client()
    response = post(client, "maitre.dupont@avocats.example", third_party="yes", relationship="lawyer",
                    subject_name="Alice Martin", order="A1001",
                    proof=(__import__("io").BytesIO(b"%PDF-1.4 power of attorney"), "mandat.pdf"))
    assert response.status_code == 303
    (case,) = service.cases.all()
    assert case.third_party
    assert case.requester.email == "maitre.dupont@avocats.example"
    assert case.subject.name == "Alice Martin" and case.subject.identifiers == {"order_reference": "A1001"}
    run_outbox(service)
    case = service.cases.get(case.id)
    assert case.verification["mandate"]["relationship"] == "lawyer"
    assert len(case.verification["mandate"]["documents"]) == 1
    assert case.verification["subject_contacts"][0]["email"] == ALICE
    assert [m.to for m in mailer.sent] == ["maitre.dupont@avocats.example"]  # nothing to the subject yet


def test_a_proof_that_is_not_a_document_is_refused(env):
    service, _, _, app, _ = env
    response = post(app.test_client(), "x@y.example", third_party="yes", relationship="parent", subject_name="Kid",
                    proof=(__import__("io").BytesIO(b"MZ\x90\x00 not a pdf"), "mandat.pdf.exe"))
    assert response.status_code == 400 and 'href="#proof"' in response.get_data(as_text=True)
    assert service.cases.all() == []


def test_code_guessing_across_cases_is_throttled_per_ip(env):
    service, mailer, _, app, _ = env
    client = app.test_client()
    for n in range(8):
        post(client, f"person{n}@nowhere.example")
    run_outbox(service)
    statuses = []
    for n in range(8):
        link = mailer.last_link(f"person{n}@nowhere.example").replace("http://dsar.test", "")
        token = csrf_of(client.get(link).get_data(as_text=True))
        for _ in range(4):  # under each case's own limit of 5
            statuses.append(client.post(link, data={"csrf_token": token,
                                                    "code": mailer.wrong_code(f"person{n}@nowhere.example")}).status_code)
    assert statuses[:30] == [400] * 30 and set(statuses[30:]) == {429}
