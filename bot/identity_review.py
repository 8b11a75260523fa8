"""Agent decisions on identity: third-party mandates, and ID documents asked for on reasonable doubt.

- Third parties (lawyer, parent, guardian, heir under French law art. 85): the requester proves
  control of their own address with a code, sends proof of the mandate, and an agent accepts or
  rejects it. On acceptance the case is verified, the data is looked up for the subject at their
  address on file, and the subject is told at that address (with a "this wasn't me" link).
- ID document: only when an agent records a reasonable doubt (with reasons). The requester uploads
  it through their verify link; an agent views it, records the check, and the document is deleted
  right then. The audit keeps "id_checked" and the outcome, never the document.
Every function here is called from the authenticated desk (bot.web.identity_desk) or the
requester's verify page; none reads message content.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable

from bot.addresses import normalize_email
from bot.cases import Change, IllegalTransition
from bot.i18n import t
from bot.models import Case, State
from bot.outbox import Effect
from bot.service import Service
from bot.uploads import Upload, store_document
from bot.vault import vault_of
from bot.verification import Verifier, subject_address_on_file, verifier_of

log = logging.getLogger(__name__)

REQUEST_ID = "verification.request_id"
NOTIFY_SUBJECT = "verification.notify_subject"
RELATIONSHIPS = ("lawyer", "parent", "guardian", "heir", "other")
NOTICE_DAYS = 90


class IdentityReview:
    def __init__(self, service: Service, verifier: Verifier) -> None:
        self.service = service
        self.cases = service.cases
        self.verifier = verifier
        self.vault = vault_of(service)
        self.max_bytes = service.config.verification.document_max_bytes

    # --- mandates ------------------------------------------------------------------------------
    def record_mandate_claim(self, case_id: str, relationship: str, upload: Upload | None) -> Case:
        """What the form says about acting for someone: a claim for an agent to review."""
        def keep(c: Case) -> None:
            c.verification.setdefault("mandate", {})["relationship"] = relationship

        case = self.cases.record(case_id, "mandate_claimed", "requester", keep, {"kind": relationship})
        return self.add_mandate_proof(case.id, upload) if upload else case

    def add_mandate_proof(self, case_id: str, upload: Upload, actor: str = "requester") -> Case:
        meta = store_document(self.vault, f"mandates/{case_id}", upload, self.max_bytes)
        meta["at"] = self.service.now().isoformat()

        def keep(c: Case) -> None:
            c.verification.setdefault("mandate", {}).setdefault("documents", []).append(meta)

        case = self.cases.record(case_id, "mandate_proof_received", actor, keep, {"count": 1})
        return self.cases.flag(case.id, "mandate_proof_received", "a proof of mandate was sent: review it")

    def read_document(self, case_id: str, vault_path: str, actor: str) -> tuple[bytes, str]:
        """An agent opens a proof or ID document; the viewing is audited."""
        case = self.cases.get(case_id)
        for doc in _documents(case):
            if doc["vault_path"] == vault_path:
                self.cases.log_event("document_viewed", actor, case, {"kind": _kind(vault_path)})
                return self.vault.read(vault_path), doc["content_type"]
        raise FileNotFoundError("no such document on this case")

    def decide_mandate(self, case_id: str, actor: str, accept: bool, reason: str = "") -> Case:
        if not accept and not reason.strip():
            raise ValueError("a rejected mandate needs reasons: they are sent to the requester")
        case = self.cases.get(case_id)
        if not case.third_party or case.state != State.AWAITING_IDENTITY:
            raise IllegalTransition(case.ref, case.state, "decide_mandate", "no mandate waits for a decision")
        if not accept:
            def rejected(c: Case) -> None:
                c.verification.setdefault("gates", {})["mandate"] = "rejected"
                c.verification["mandate"] = {**c.verification.get("mandate", {}), "rejected_reason": reason}

            return self.cases.transition(case.id, "reject_identity", actor, mutate=rejected,
                                         detail={"reason": reason, "kind": "mandate"})

        def accepted(c: Case) -> None:
            c.verification.setdefault("gates", {})["mandate"] = "accepted"
            c.verification.setdefault("mandate", {})["accepted_by"] = actor

        case = self.cases.record(case.id, "mandate_accepted", actor, accepted, {"kind": "mandate"})
        self.cases.resolve_flag(case.id, "mandate_review", actor)
        return self._verify_if_ready(case, actor)

    # --- ID documents on reasonable doubt -----------------------------------------------------
    def request_id_document(self, case_id: str, actor: str, reason: str) -> Case:
        if not reason.strip():
            raise ValueError("an ID document may only be asked for with the reasonable doubt written down")
        case = self.cases.get(case_id)
        if case.state != State.AWAITING_IDENTITY:
            raise IllegalTransition(case.ref, case.state, "request_id_document",
                                    "an ID document can only be asked for while identity is being checked")

        def doubt(c: Case) -> None:
            c.verification.setdefault("gates", {})["id_document"] = "requested"
            c.verification["id_check"] = {"reason": reason, "by": actor, "at": self.service.now().isoformat()}

        case = self.cases.record(case.id, "id_document_requested", actor, doubt, {"reason": reason})
        slots = _slots_to_ask(case)
        for slot in slots:
            self.service.outbox.enqueue(Effect(REQUEST_ID, key=f"{case.id}:request_id:{slot}:v{case.version}",
                                               case_id=case.id, payload={"slot": slot}))
        return case

    def send_id_request(self, case_id: str, slot: int) -> dict[str, Any]:
        from bot.secret_mail import send_secret_mail

        case = self.cases.get(case_id)
        if case.verification.get("gates", {}).get("id_document") != "requested":
            return {"skipped": "no ID document requested"}
        token = self.verifier.link_token(case, slot)
        base = self.service.config.service.base_url.rstrip("/")
        send_secret_mail(self.service, case, case.verification["challenges"][slot]["address"], "id_document_request",
                         {"link": f"{base}/verify/{token}", "not_me_link": f"{base}/verify/{token}/not-me"},
                         key=f"{case.id}:request_id:{slot}:{case.version}")
        return {"sent": True}

    def add_id_document(self, case_id: str, slot: int, upload: Upload) -> Case:
        case = self.cases.get(case_id)
        if case.verification.get("gates", {}).get("id_document") not in ("requested", "received"):
            raise IllegalTransition(case.ref, case.state, "add_id_document", "no ID document was asked for")
        meta = store_document(self.vault, f"identity/{case_id}", upload, self.max_bytes)
        meta.update(slot=slot, at=self.service.now().isoformat())
        old = case.verification.get("id_check", {}).get("document")

        def keep(c: Case) -> None:
            c.verification["gates"]["id_document"] = "received"
            c.verification["id_check"]["document"] = meta

        case = self.cases.record(case.id, "id_document_received", "requester", keep, {"kind": "id_document"})
        if old:
            self.vault.delete(old["vault_path"])  # only the latest copy is kept, and only until the check
        return self.cases.flag(case.id, "id_document_received", "an ID document was uploaded: check it")

    def record_id_check(self, case_id: str, actor: str, ok: bool, reason: str = "") -> Case:
        """The agent looked at the document: delete it now, keep only that it was checked."""
        case = self.cases.get(case_id)
        document = case.verification.get("id_check", {}).get("document")
        if not document:
            raise IllegalTransition(case.ref, case.state, "record_id_check", "no ID document to check")
        if not ok and not reason.strip():
            raise ValueError("a failed ID check needs reasons: they are sent to the requester")
        self.vault.delete(document["vault_path"])

        def checked(c: Case) -> None:
            c.verification["gates"]["id_document"] = "checked" if ok else "failed"
            c.verification["id_check"] = {**{k: v for k, v in c.verification["id_check"].items() if k != "document"},
                                          "checked_by": actor, "checked_at": self.service.now().isoformat(),
                                          "outcome": "ok" if ok else "failed", "slot": document["slot"]}

        case = self.cases.record(case.id, "id_checked", actor, checked, {"outcome": "ok" if ok else "failed"})
        self.cases.resolve_flag(case.id, "id_document_received", actor)
        if not ok:
            return self.cases.transition(case.id, "reject_identity", actor, detail={"reason": reason, "kind": "id"})
        return self._verify_if_ready(case, actor, id_slot=document["slot"])

    # --- shared -------------------------------------------------------------------------------
    def _verify_if_ready(self, case: Case, actor: str, id_slot: int | None = None) -> Case:
        gates = case.verification.get("gates", {})
        if any(state not in ("accepted", "checked") for state in gates.values()):
            return case
        if id_slot is not None and not case.verification.get("code_ok"):
            address, method = case.verification["challenges"][id_slot]["address"], "id_document"
        elif case.verification.get("code_ok"):
            address, method = case.verification["code_ok"]["address"], "email_code"
        else:
            return case  # the requester has not proven control of an address yet: the code will finish it
        case = self.verifier.complete(case.id, address, method, actor)
        self.cases.resolve_flag(case.id, "identity_review", actor)
        if case.third_party and case.subject.email:
            self.service.outbox.enqueue(Effect(NOTIFY_SUBJECT, key=f"{case.id}:notify_subject", case_id=case.id))
        return case

    def notify_subject(self, case_id: str) -> dict[str, Any]:
        """Tell the data subject, at their address on file, that someone acts for them."""
        from bot.secret_mail import send_secret_mail

        case = self.cases.get(case_id)
        address = subject_address_on_file(case)
        on_file = {c["email"] for c in case.verification.get("subject_contacts", [])}
        if not address or address not in on_file:
            self.cases.flag(case.id, "subject_not_on_file", "the subject has no address on file: they were not told")
            return {"skipped": "not on file"}
        expires = self.service.now().replace(microsecond=0) + _days(NOTICE_DAYS)
        token = self.verifier.tokens.derive("notice", case.id, expires, case_id=case.id, slot=-1)
        base = self.service.config.service.base_url.rstrip("/")
        relationship = case.verification.get("mandate", {}).get("relationship", "other")
        send_secret_mail(self.service, case, address, "third_party_notice",
                         {"relationship_label": t(f"relationship.{relationship}", case.language).lower(),
                          "not_me_link": f"{base}/verify/{token}/not-me"},
                         key=f"{case.id}:notify_subject")
        self.cases.log_event("subject_notified", "system", case, {"kind": relationship})
        return {"sent": True}


def _days(n: int):
    from datetime import timedelta

    return timedelta(days=n)


def _slots_to_ask(case: Case) -> list[int]:
    code_ok = case.verification.get("code_ok")
    if code_ok:
        return [int(code_ok["slot"])]
    return list(range(len(case.verification.get("challenges", []))))


def _documents(case: Case) -> list[dict[str, Any]]:
    docs = list(case.verification.get("mandate", {}).get("documents", []))
    document = case.verification.get("id_check", {}).get("document")
    return docs + ([document] if document else [])


def _kind(vault_path: str) -> str:
    return "id_document" if vault_path.startswith("identity/") else "mandate"


def review_of(service: Service) -> IdentityReview:
    return service.shared("identity_review", lambda: IdentityReview(service, verifier_of(service)))


def rejection_planner(service: Service):
    """When identity or a mandate is rejected, tell the requester why, and where to complain (Art. 12(4))."""
    from bot.mailing import mail_effect
    from bot.secret_mail import mail_domain

    def plan(change: Change) -> Iterable[Effect]:
        case = change.case
        to = normalize_email(case.requester.email)
        if change.action != "reject_identity" or not to or not change.detail.get("reason"):
            return
        yield mail_effect(case, key=f"{case.id}:identity_rejected:v{case.version}", to=to,
                          template="identity_rejected", context={
                              "reasons": change.detail["reason"], "shop_name": service.config.service.shop_name,
                              "authority": service.config.jurisdiction.authority,
                              "mandate": change.detail.get("kind") == "mandate"},
                          domain=mail_domain(service))

    return plan


def setup(service: Service) -> None:
    review = review_of(service)
    service.cases.add_planner(rejection_planner(service))
    # mail: kept trying through a long SMTP outage (the case is flagged meanwhile)
    service.outbox.register(REQUEST_ID, lambda e: review.send_id_request(e["case_id"], e["payload"]["slot"]),
                            keep_trying=True)
    service.outbox.register(NOTIFY_SUBJECT, lambda e: review.notify_subject(e["case_id"]), keep_trying=True)
