"""Intake's replay dedupe: the same item twice is one record; a reused Message-ID with other content is not
a replay and is never dropped (found by tests/fuzz)."""
from __future__ import annotations

from bot.models import Message


def mail(service, text: str, message_id: str, subject: str = "Demande RGPD", sender: str = "jeanne@example.fr"):
    return Message(id="", channel="email", sender=sender, subject=subject, text=text, received_at=service.now(),
                   message_id=message_id)


REQUEST = "Bonjour, je souhaite obtenir une copie de mes données personnelles (article 15 du RGPD)."


def test_the_same_mail_twice_is_one_case(service):
    intake = service.components["intake"]
    first = intake.receive(mail(service, REQUEST, "<a1@example.fr>"))
    again = intake.receive(mail(service, REQUEST, "<a1@example.fr>"))
    assert (first.outcome, again.outcome) == ("case_opened", "duplicate")
    assert again.case_id == first.case_id and service.store.count("messages") == 1


def test_other_content_under_a_reused_message_id_is_threaded_onto_the_first_case(service):
    intake = service.components["intake"]
    first = intake.receive(mail(service, REQUEST, "<reused@example.fr>"))
    other = intake.receive(mail(service, "Voici mon numéro de commande : KXQBRNTWE.", "<reused@example.fr>",
                                subject="Complément"))
    assert (first.outcome, other.outcome) == ("case_opened", "attached")
    case = service.cases.get(first.case_id)
    assert other.message_id in case.message_ids and len(case.message_ids) == 2
    assert any(f.code == "new_message" for f in case.open_flags)
    # and that second mail is itself deduplicated when it comes again
    assert intake.receive(mail(service, "Voici mon numéro de commande : KXQBRNTWE.", "<reused@example.fr>",
                               subject="Complément")).outcome == "duplicate"


def test_a_reused_message_id_of_a_non_request_does_not_hide_a_request(service):
    intake = service.components["intake"]
    assert intake.receive(mail(service, "Merci pour la livraison rapide !", "<0@mailer>")).outcome == "ignored"
    second = intake.receive(mail(service, REQUEST, "<0@mailer>", sender="paul@example.fr"))
    assert second.outcome == "case_opened"


def test_an_empty_message_id_is_no_message_id(service):
    intake = service.components["intake"]
    one = intake.receive(mail(service, REQUEST, "<>", sender="a@example.fr"))
    two = intake.receive(mail(service, REQUEST, "<>", sender="b@example.fr"))
    assert (one.outcome, two.outcome) == ("case_opened", "case_opened") and one.case_id != two.case_id
    assert service.store.get("refs", "msgid:") is None
