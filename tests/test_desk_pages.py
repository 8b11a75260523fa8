"""Desk pages: the list by due date with urgency at a glance, the case page, nothing from outside unescaped."""
from __future__ import annotations

import re

import pytest

from tests.desk_seed import HOSTILE_SUBJECT


def rows(html: str) -> list[tuple[str, str]]:
    """(reference, urgency) of each row of the case table, in order."""
    return re.findall(r'<tr class="u-([a-z_]+)" data-ref="([A-Z0-9-]+)"', html)


def test_list_is_sorted_by_due_date_with_urgency_badges(agent, seeded):
    html = agent.get("/desk/").get_data(as_text=True)
    order = [ref for _, ref in rows(html)]
    assert order == [seeded.refs[n] for n in ("overdue", "due_soon", "drafted", "failed", "hostile")]
    urgency = {ref: u for u, ref in rows(html)}
    assert urgency[seeded.refs["overdue"]] == "overdue" and urgency[seeded.refs["due_soon"]] == "due_soon"
    assert urgency[seeded.refs["drafted"]] == "on_track"
    assert '<span class="badge overdue" data-urgency="overdue">7 days overdue</span>' in html
    assert '<span class="badge due_soon" data-urgency="due_soon">5 days left</span>' in html
    assert seeded.refs["dismissed"] not in html  # answered: not in the open view


def test_counts_per_urgency_at_the_top(agent):
    html = agent.get("/desk/").get_data(as_text=True)
    counts = dict((label, int(n)) for n, label in re.findall(r"<strong>(\d+)</strong><span>([^<]+)</span>", html))
    assert counts == {"overdue": 1, "due within a week": 1, "on track": 3, "need attention": 2}


def test_needs_attention_and_all_views(agent, seeded):
    attention = [ref for _, ref in rows(agent.get("/desk/?view=attention").get_data(as_text=True))]
    assert attention == [seeded.refs["due_soon"], seeded.refs["failed"]]
    every = [ref for _, ref in rows(agent.get("/desk/?view=all").get_data(as_text=True))]
    assert every[-1] == seeded.refs["dismissed"] and len(every) == 6
    assert ('answered', seeded.refs["dismissed"]) in rows(agent.get("/desk/?view=all").get_data(as_text=True))
    assert rows(agent.get("/desk/?view=bogus").get_data(as_text=True)) == \
        rows(agent.get("/desk/?view=open").get_data(as_text=True))


def test_search_by_reference(agent, seeded):
    ref = seeded.refs["failed"]
    response = agent.get(f"/desk/?q={ref.lower()}")
    assert response.status_code == 302 and response.headers["Location"] == f"/desk/cases/{ref}"
    partial = [r for _, r in rows(agent.get(f"/desk/?q={ref[-5:]}").get_data(as_text=True))]
    assert partial == [ref]
    html = agent.get("/desk/?q=<b>nope</b>").get_data(as_text=True)
    assert "No case whose reference contains" in html and "&lt;b&gt;nope&lt;/b&gt;" in html and "<b>nope" not in html


def test_hostile_message_renders_inert_on_the_case_page(agent, seeded):
    html = agent.get(f"/desk/cases/{seeded.refs['hostile']}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{7*7}}" in html  # shown literally, not evaluated
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt; {{ config }}" in html
    assert "&#34;quoted&#34; &amp; more" in html
    assert "<b>Mallory</b>" not in html and "&lt;b&gt;Mallory&lt;/b&gt;" in html
    assert "test-secret-key" not in html  # {{ config }} was not evaluated
    # the attachment is listed by a safe name, never by the sender's
    assert "etc_passwd_script_.html" in html and "../" not in html


def test_hostile_text_is_escaped_in_the_list_and_the_not_requests(agent):
    listing = agent.get("/desk/").get_data(as_text=True)
    assert "<b>Mallory</b>" not in listing and "&lt;b&gt;Mallory&lt;/b&gt;" in listing
    ignored = agent.get("/desk/not-requests").get_data(as_text=True)
    assert "<b>jusqu" not in ignored and "&lt;b&gt;jusqu&#39;au 20&lt;/b&gt;" in ignored


def test_case_page_shows_clock_cues_verification_draft_and_history(agent, seeded):
    html = agent.get(f"/desk/cases/{seeded.refs['drafted']}").get_data(as_text=True)
    for text in ("Thu 2025-04-24", "Mon 2025-05-26", "Thu 2025-07-24", "Sat 2025-05-24", "12 days left",
                 "« copie de mes données »", "97%", "email_code", "Verified address", "claire.draft@example.fr",
                 "shop_db", "export.csv", "Approve this draft", "Identity verified", "Audit trail"):
        assert text in html, text
    case = seeded.case("drafted")
    assert f'name="draft_hash" value="{case.draft["hash"]}"' in html
    assert f'<iframe class="letter" sandbox src="/desk/cases/{case.ref}/draft/letter"' in html


def test_the_draft_panel_shows_what_to_check_before_approving(agent, seeded):
    case = seeded.case("drafted")
    html = agent.get(f"/desk/cases/{case.ref}").get_data(as_text=True)
    assert "Others&#39; data removed (Art. 15(4))</dt>\n      <dd>none" in html
    seeded.service.cases.record(case.id, "redraft", "system", lambda c: c.draft.update(
        redactions=[{"source": "shop", "system": "PrestaShop", "entity": "ps_customer_message", "record_id": "7",
                     "field": "message", "kind": "email", "count": 2}],
        repeat_requests=[{"ref": seeded.refs["overdue"], "received": "2025-03-01", "state": "delivered",
                          "rights": ["access"]}],
        warnings=["<b>the annex was cut</b>"]))
    html = agent.get(f"/desk/cases/{case.ref}").get_data(as_text=True)
    assert "PrestaShop · ps_customer_message · message: email ×2" in html
    assert f'<a href="/desk/cases/{seeded.refs["overdue"]}">{seeded.refs["overdue"]}</a> (2025-03-01, Delivered)' in html
    assert "&lt;b&gt;the annex was cut&lt;/b&gt;" in html


def test_gathering_status_and_flags_on_a_failed_case(agent, seeded):
    html = agent.get(f"/desk/cases/{seeded.refs['failed']}").get_data(as_text=True)
    assert "Sources did not answer" in html and "crm" in html and "status-failed" in html
    assert 'data-action="start_gathering"' in html and 'data-action="resolve_flag"' in html


def test_letter_is_sandboxed(agent, seeded):
    response = agent.get(f"/desk/cases/{seeded.refs['drafted']}/draft/letter")
    assert response.status_code == 200 and response.mimetype == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert csp.startswith("sandbox;") and "default-src 'none'" in csp and "script-src" not in csp
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "Madame Claire Draft" in response.get_data(as_text=True)
    assert agent.get(f"/desk/cases/{seeded.refs['hostile']}/draft/letter").status_code == 404


def test_attachment_download_is_decrypted_safe_named_and_audited(agent, seeded):
    case = seeded.case("hostile")
    message_id = case.message_ids[0]
    response = agent.get(f"/desk/cases/{case.ref}/messages/{message_id}/attachments/0")
    assert response.status_code == 200 and response.data == b"%PDF-1.4 not really"
    assert response.mimetype == "application/octet-stream"  # never rendered in our origin
    assert response.headers["Content-Disposition"] == 'attachment; filename="etc_passwd_script_.html"'
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    event = list(seeded.service.audit.events(case.id))[-1]
    assert (event["action"], event["actor"], event["detail"]["message_id"]) == \
        ("attachment_downloaded", "agent:alice", message_id)
    # on disk it is encrypted
    stored = (seeded.service.data_dir / "vault" / "attachments" / "hostile" / "0").read_bytes()
    assert b"PDF" not in stored


def test_attachments_only_through_their_own_case(agent, seeded):
    other = seeded.case("drafted")
    hostile = seeded.case("hostile")
    assert agent.get(f"/desk/cases/{other.ref}/messages/{hostile.message_ids[0]}/attachments/0").status_code == 404
    assert agent.get(f"/desk/cases/{hostile.ref}/messages/{hostile.message_ids[0]}/attachments/1").status_code == 404


def test_draft_file_download(agent, seeded):
    case = seeded.case("drafted")
    response = agent.get(f"/desk/cases/{case.ref}/draft/files/0")
    assert response.data.startswith(b"order,date") and "export.csv" in response.headers["Content-Disposition"]
    assert list(seeded.service.audit.events(case.id))[-1]["action"] == "draft_file_downloaded"
    assert agent.get(f"/desk/cases/{case.ref}/draft/files/5").status_code == 404


def test_not_requests_list_with_cues(agent, seeded):
    html = agent.get("/desk/not-requests").get_data(as_text=True)
    assert "Auto-reply" in html and "Auto-Submitted: auto-replied" in html and "99%" in html
    assert "Je suis absent." in html


def test_quarantine_list(agent):
    html = agent.get("/desk/quarantine").get_data(as_text=True)
    assert "too_large" in html and "48000000" in html
    assert "big&lt;file&gt;@example.com" in html


def test_sent_mail_shows_text_escaped(agent):
    listing = agent.get("/desk/sent-mail").get_data(as_text=True)
    assert "nina.soon@example.com" in listing and "Votre demande &lt;b&gt;reçue&lt;/b&gt;" in listing
    html = agent.get("/desk/sent-mail/0001-ack.eml").get_data(as_text=True)
    assert "Hello &lt;script&gt;alert(3)&lt;/script&gt;, we received your request." in html
    assert "<script>" not in html and "auto-generated" in html


def test_sent_mail_links_only_to_this_service(agent, seeded):
    base = seeded.service.config.service.base_url.rstrip("/")
    (seeded.service.data_dir / "sent-mail" / "0002-code.eml").write_text(
        "From: x@shop.example\nTo: nina.soon@example.com\nSubject: code\n\n"
        f"Open {base}/verify/AbC_1-2 now.\nNot this: https://evil.example/x?<b>\n"
        f'Nor this: {base}/verify/"onmouseover="alert(1)\n')
    html = agent.get("/desk/sent-mail/0002-code.eml").get_data(as_text=True)
    assert f'<a href="{base}/verify/AbC_1-2" rel="noreferrer">{base}/verify/AbC_1-2</a> now.' in html
    assert "https://evil.example/x?&lt;b&gt;" in html and 'href="https://evil.example' not in html
    assert 'onmouseover="' not in html


@pytest.mark.parametrize("name", ["..%2F..%2Fsecret.key", "../secret.key", "0001-ack.txt", ".hidden.eml"])
def test_sent_mail_names_cannot_leave_the_folder(agent, seeded, name):
    (seeded.service.data_dir / "sent-mail" / ".hidden.eml").write_text("From: x\n\nhidden")
    assert agent.get(f"/desk/sent-mail/{name}").status_code == 404


def test_pages_work_without_sent_mail_quarantine_or_ignored(agent, seeded):
    import shutil

    shutil.rmtree(seeded.service.data_dir / "sent-mail")
    seeded.service.store.delete("quarantine", "q1")
    html = agent.get("/desk/").get_data(as_text=True)
    assert "Sent mail" not in html and "Quarantine" not in html
    assert agent.get("/desk/sent-mail").status_code == 200
    assert agent.get("/desk/quarantine").status_code == 200


def test_french_pages(agent, seeded):
    headers = {"Accept-Language": "fr"}
    listing = agent.get("/desk/", headers=headers).get_data(as_text=True)
    assert "7 jours de retard" in listing and "en retard" in listing
    html = agent.get(f"/desk/cases/{seeded.refs['drafted']}", headers=headers).get_data(as_text=True)
    assert "Approuver ce projet" in html and "Délais légaux" in html and "sam. 2025-05-24" in html


def test_unknown_case_is_404(agent):
    assert agent.get("/desk/cases/DSR-000000-XXXXX").status_code == 404
