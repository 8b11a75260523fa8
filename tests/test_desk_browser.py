"""The desk in a real browser (Debian's Chromium via Playwright), against the service served by waitress."""
from __future__ import annotations

import re

import pytest

from tests.desk_seed import HOSTILE_SUBJECT, PASSWORD
from tests.servers.web import running_web


@pytest.fixture
def server(seeded):
    with running_web(seeded.service) as web:
        yield web


def log_in(page, server, login: str = "alice") -> None:
    page.goto(server.url("/desk/"))
    assert page.title().startswith("Agent login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(server.url("/desk/"))


def test_agent_reviews_extends_and_approves(page, server, seeded):
    log_in(page, server)

    # The list: sorted by due date, the overdue case first with its badge, counts on top.
    refs = page.locator("table.cases tbody tr").evaluate_all("rows => rows.map(r => r.dataset.ref)")
    assert refs == [seeded.refs[n] for n in ("overdue", "due_soon", "drafted", "failed", "hostile")]
    first = page.locator("table.cases tbody tr").first
    assert first.locator(".badge.overdue").inner_text() == "7 days overdue"
    badge_colour = first.locator(".badge.overdue").evaluate("b => getComputedStyle(b).backgroundColor")
    assert badge_colour == "rgb(180, 35, 24)"  # the stylesheet loaded: overdue is red at a glance
    assert page.locator(".stat.overdue strong").inner_text() == "1"
    page.screenshot(path="/tmp/desk-list.png", full_page=True)

    # Open the drafted case.
    ref = seeded.refs["drafted"]
    page.click(f"a:has-text('{ref}')")
    page.wait_for_url(server.url(f"/desk/cases/{ref}"))
    assert page.locator(".case-head .pill").inner_text() == "Draft ready"
    assert "Sat 2025-05-24" in page.locator(".clock").inner_text()
    letter = page.frame_locator("iframe.letter")
    assert "Madame Claire Draft" in letter.locator("body").inner_text()
    assert "SCRIPT RAN" not in letter.locator("body").inner_text()  # the sandbox stopped the letter's script
    page.screenshot(path="/tmp/desk-case.png", full_page=True)

    # Extend with a reason.
    page.click("details[data-action=extend] summary")
    page.fill("details[data-action=extend] textarea[name=reason]", "Orders are kept in three separate systems")
    page.click("details[data-action=extend] button")
    page.wait_for_url(server.url(f"/desk/cases/{ref}"))
    assert f"{ref}: extended." in page.locator(".flashes").inner_text()
    assert page.locator("details[data-action=extend]").count() == 0  # once extended, no second extension
    assert "Orders are kept in three separate systems" in page.locator(".clock").inner_text()
    assert page.locator(".head-clock").inner_text().startswith("71 days left")

    # Approve the draft shown.
    page.click("button:has-text('Approve this draft')")
    page.wait_for_url(server.url(f"/desk/cases/{ref}"))
    assert page.locator(".case-head .pill").inner_text() == "Approved"
    assert "Approved by agent:alice" in page.locator(".draft").inner_text()
    case = seeded.case("drafted")
    assert case.approval["by"] == "agent:alice" and case.extension["by"] == "agent:alice"
    page.screenshot(path="/tmp/desk-case-approved.png", full_page=True)

    # Back in the list, the state changed.
    page.click("nav.crumbs a")
    row = page.locator(f"tr[data-ref='{ref}']")
    assert row.locator(".pill").inner_text() == "Approved"
    assert "extended" in row.locator("td.due").inner_text()


def test_hostile_message_stays_text(page, server, seeded):
    log_in(page, server)
    page.goto(server.url(f"/desk/cases/{seeded.refs['hostile']}"))
    assert page.locator(".message .subject").inner_text() == HOSTILE_SUBJECT
    assert page.locator("script").count() == 0
    assert page.locator(".message img").count() == 0
    # the `page` fixture fails the test if any alert() ran


def test_a_stale_page_cannot_approve_a_new_draft(page, server, seeded):
    import hashlib

    log_in(page, server)
    ref = seeded.refs["drafted"]
    page.goto(server.url(f"/desk/cases/{ref}"))
    seeded.service.cases.record(seeded.case("drafted").id, "redraft", "system",
                                lambda c: c.draft.update({"hash": hashlib.sha256(b"new").hexdigest()}))
    page.click("button:has-text('Approve this draft')")
    assert re.search(rf"{ref}: “Approve” was refused", page.locator(".flashes").inner_text())
    assert page.locator(".case-head .pill").inner_text() == "Draft ready"
    assert seeded.case("drafted").approval == {}


def test_the_desk_needs_no_javascript(browser, server, seeded):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, server, "bob")
        ref = seeded.refs["due_soon"]
        page.goto(server.url(f"/desk/cases/{ref}"))
        page.click("details[data-action=refuse] summary")
        page.fill("details[data-action=refuse] textarea", "Manifestly unfounded: see previous answers")
        page.click("details[data-action=refuse] button")
        assert page.locator(".case-head .pill").inner_text() == "Refused"
        assert seeded.case("due_soon").decisions[-1]["by"] == "agent:bob"
        page.click("button:has-text('Log out')")
        page.wait_for_url(server.url("/desk/login"))
        page.goto(server.url("/desk/"))
        assert page.title().startswith("Agent login")
    finally:
        context.close()
