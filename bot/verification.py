"""Proportionate identity verification: prove control of a channel already on file with a one-time code.

Flow (SECURITY.md rules 1, 2, 3, 5):
- on "open", a planner queues `verification.start` for every request that came from outside;
- the handler looks up the addresses on file (`gatherer.contacts_on_file`) in the background, picks
  where codes go (`choose_targets`) and moves the case to `awaiting_identity`; the planner on
  `request_identity` then queues one `verification.send_code` per target, whose handler makes the
  code and the link and mails them (bot.secret_mail) — so nothing the requester sees, nor how fast
  they see it, depends on whether we hold data on them;
- the requester types the code on `/verify/<token>` (bot.web.verify): right → `verify`
  (or waiting on an agent when a mandate or an ID check is pending); wrong codes are counted and
  the case locks after `max_attempts`; "this wasn't me" freezes the case.
Nothing in a message (body, subject, Reply-To, attachments) is read here: only the case's
requester address (the writing address, a claim) and the records on file.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Iterable, Protocol

from bot.addresses import normalize_email
from bot.cases import Change
from bot.models import Case, Channel, State
from bot.otp import Check, Codes, Tokens
from bot.outbox import Effect, PermanentFailure
from bot.secret_mail import send_secret_mail
from bot.service import Service, secret_key
from bot.throttle import Throttle
from integrations.base import OnFileContact

log = logging.getLogger(__name__)

START = "verification.start"
SEND_CODE = "verification.send_code"
#: Requests that reach us from outside need verification; an agent opening a case on the desk records it.
NEEDS_VERIFICATION = frozenset({Channel.EMAIL, Channel.FORM, Channel.ZENDESK, Channel.FRESHDESK})
MAX_ON_FILE_TARGETS = 3  # a record set pointing at more addresses than this needs an agent anyway
LINK_DAYS = 60  # the verify link lives as long as a request may reasonably wait for identity
RESENDS_PER_HOUR = 3


class ContactsLookup(Protocol):
    def contacts_on_file(self, email: str | None, identifiers: dict[str, str]) -> list[Any]:
        """OnFileContact(email, source, matched_on) for every address on file these point at."""


@dataclass(frozen=True)
class Target:
    """Where one code goes, and why we may send it there."""

    address: str
    basis: str  # "on_file": an address in our records | "writing_address": proving control of the sender
    source: str = ""
    matched_on: str = ""


@dataclass
class TargetChoice:
    targets: list[Target]
    flags: list[tuple[str, str]] = field(default_factory=list)  # (code, detail without personal data)


def choose_targets(writing_address: str, contacts: Iterable[Any]) -> TargetChoice:
    """Where the codes go. Only addresses on file, plus the writing address itself, proving only itself.

    - the writing address is on file (spelled exactly the same): one code, to it;
    - it is not, but the identifiers given point at addresses on file: a code to each of those (with
      a "this wasn't me" link) and, so that the writer sees exactly what a non-customer sees (rule 5),
      one to the writing address, which can only ever unlock data linked to that address;
    - nothing on file: a code to the writing address; if nothing is linked to it, the answer is
      "we hold no data linked to this address".
    """
    writing = normalize_email(writing_address)
    on_file: dict[str, Target] = {}
    for contact in contacts:
        address = normalize_email(getattr(contact, "email", "") or "")
        if address and address not in on_file:
            on_file[address] = Target(address, "on_file", getattr(contact, "source", ""),
                                      str(getattr(contact, "matched_on", "")))
    flags: list[tuple[str, str]] = []
    if writing and writing in on_file:
        if len(on_file) > 1:
            flags.append(("other_contacts_on_file", "the identifiers given also point at other customer "
                                                    "records; only data linked to the verified address is used"))
        return TargetChoice([on_file[writing]], flags)
    targets = [Target(writing, "writing_address")] if writing else []
    if on_file:
        flags.append(("sender_differs_from_file", "the request was written from an address that is not the one "
                                                  "on file: codes went to the address(es) on file"))
        if len(on_file) > MAX_ON_FILE_TARGETS:
            flags.append(("many_contacts_on_file", f"{len(on_file)} addresses on file match; codes went to "
                                                   f"the first {MAX_ON_FILE_TARGETS}"))
        targets += list(on_file.values())[:MAX_ON_FILE_TARGETS]
    if not targets:
        flags.append(("no_address", "no usable address to verify: contact the requester through the ticket"))
    return TargetChoice(targets, flags)


def identifiers_linked_to(address: str, identifiers: dict[str, str], contacts: list[dict[str, Any]]) -> dict[str, str]:
    """Keep an identifier (order number, customer id) only if the records say it belongs to `address`:
    an order number typed by someone else must never widen what a verified address unlocks."""
    kept = {}
    for key, value in identifiers.items():
        if any(c.get("matched_on") == key and c.get("email") == address for c in contacts):
            kept[key] = value
    return kept


class Outcome(StrEnum):
    VERIFIED = "verified"
    AWAITING_AGENT = "awaiting_agent"  # code right; a mandate or an ID check still needs an agent
    WRONG = "wrong"
    LOCKED = "locked"
    EXPIRED = "expired"
    INVALID = "invalid"  # unknown link, or the case is no longer waiting for identity (or frozen)
    THROTTLED = "throttled"
    SENT = "sent"


class Verifier:
    """The verification steps, shared by the outbox handlers, the public pages and the desk."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.cases = service.cases
        cfg = service.config.verification
        secret = secret_key(service.config)
        self.codes = Codes(service.store, secret, service.now, digits=cfg.code_digits,
                           ttl_minutes=cfg.code_ttl_minutes, max_attempts=cfg.max_attempts)
        self.tokens = Tokens(service.store, secret, service.now)

    # --- planners ------------------------------------------------------------------------------
    def ready(self) -> bool:
        """Codes need the addresses on file (the gatherer) and a way to mail them (the mailer). Without
        them (a demo, a shop not yet connected) new requests simply wait in `received` for an agent."""
        return self.service.component("gatherer") is not None and self.service.component("mailer") is not None

    def plan(self, change: Change) -> Iterable[Effect]:
        case = change.case
        if change.action == "open" and case.channel in NEEDS_VERIFICATION and self.ready():
            yield Effect(START, key=f"{case.id}:verification.start", case_id=case.id)
        elif change.action == "request_identity":
            for slot, _ in enumerate(case.verification.get("challenges", [])):
                yield Effect(SEND_CODE, key=f"{case.id}:code:{slot}:v{case.version}", case_id=case.id,
                             payload={"slot": slot})

    # --- background steps ----------------------------------------------------------------------
    def start(self, case_id: str) -> dict[str, Any]:
        """Look up the addresses on file and ask for identity. Idempotent: runs once per case."""
        case = self.cases.get(case_id)
        if case.state != State.RECEIVED or case.verification.get("challenges"):
            self._raise_flags(case)  # a process killed between asking and flagging left them unraised
            return {"skipped": str(case.state)}
        lookup: ContactsLookup | None = self.service.component("gatherer")
        if lookup is None:
            raise PermanentFailure("no data sources configured: cannot find the addresses on file")
        writing = case.requester.email
        if case.third_party:
            # The requester proves control of their own address; the mandate is for an agent to judge.
            choice = TargetChoice([Target(normalize_email(writing), "requester")] if normalize_email(writing) else [],
                                  [("mandate_review", "a third party asks on someone's behalf: review the proof")])
            if not choice.targets:
                choice.flags.append(("no_address", "no usable requester address to verify"))
            subject_contacts = _contact_docs(lookup.contacts_on_file(case.subject.email or None,
                                                                     dict(case.subject.identifiers)))
            contacts: list[dict[str, Any]] = []
        else:
            contacts = _contact_docs(lookup.contacts_on_file(writing or None, dict(case.subject.identifiers)))
            choice = choose_targets(writing, contacts_as_objects(contacts))
            subject_contacts = []

        def ask(c: Case) -> None:
            c.verification = {
                **{k: v for k, v in c.verification.items() if k == "mandate"},  # proofs sent with the form
                "status": "pending",
                "challenges": [{"address": t.address, "basis": t.basis, "source": t.source,
                                "matched_on": t.matched_on} for t in choice.targets],
                "contacts": contacts, "subject_contacts": subject_contacts,
                "gates": {"mandate": "pending"} if c.third_party else {},
                "verified": False,
                "flags": [list(flag) for flag in choice.flags],  # raised just after; kept to finish after a crash
            }

        if not choice.targets:
            self.cases.record(case.id, "verification_blocked", "system", ask)
        else:
            self.cases.transition(case.id, "request_identity", "system", mutate=ask,
                                  detail={"count": len(choice.targets)})
        self._raise_flags(self.cases.get(case.id))
        log.info("case %s: identity requested (%d code(s))", case.ref, len(choice.targets))
        return {"targets": len(choice.targets)}

    def _raise_flags(self, case: Case) -> None:
        """The flags the target choice asked for, each raised once (never again once an agent resolved it)."""
        raised = {f.code for f in case.flags}
        for code, detail in case.verification.get("flags", []):
            if code not in raised:
                self.cases.flag(case.id, code, detail)

    def send_code(self, case_id: str, slot: int) -> dict[str, Any]:
        """Issue a fresh code for one target and mail it with the link. Replaces the slot's last code."""
        case = self.cases.get(case_id)
        challenges = case.verification.get("challenges", [])
        if case.state != State.AWAITING_IDENTITY or case.frozen or slot >= len(challenges):
            return {"skipped": str(case.state)}
        challenge = challenges[slot]
        issued = self.codes.issue(_budget(case.id), "verify", replaces=challenge.get("challenge_id", ""))
        token = self.link_token(case, slot)
        base = self.service.config.service.base_url.rstrip("/")

        def keep(c: Case) -> None:
            c.verification["challenges"][slot].update(challenge_id=issued.challenge_id,
                                                      sent_at=self.service.now().isoformat())

        self.cases.record(case.id, "code_sent", "system", keep, {"kind": challenge["basis"]})
        send_secret_mail(self.service, case, challenge["address"], "verification_code", {
            "code": issued.code, "link": f"{base}/verify/{token}", "not_me_link": f"{base}/verify/{token}/not-me",
            "ttl_minutes": self.service.config.verification.code_ttl_minutes,
        }, key=f"{case.id}:code:{issued.challenge_id}")
        return {"sent": True, "kind": challenge["basis"]}

    def link_token(self, case: Case, slot: int) -> str:
        expires = case.received_at + timedelta(days=LINK_DAYS)
        return self.tokens.derive("verify", f"{case.id}:{slot}", expires, case_id=case.id, slot=slot)

    # --- the requester's side (bot.web.verify) --------------------------------------------------
    def open_link(self, token: str, purpose: str = "verify") -> tuple[Case, int] | None:
        link = self.tokens.resolve(token, purpose)
        if link is None:
            return None
        case = self.cases.get(link["case_id"])
        return case, int(link["slot"])

    def submit_code(self, token: str, code: str) -> Outcome:
        opened = self.open_link(token)
        if opened is None:
            return Outcome.INVALID
        case, slot = opened
        if case.state != State.AWAITING_IDENTITY or case.frozen:
            return Outcome.INVALID
        challenge = case.verification["challenges"][slot]
        if case.verification.get("code_ok"):
            return Outcome.AWAITING_AGENT
        result = self.codes.check(challenge.get("challenge_id", ""), code, "verify")
        if result == Check.WRONG:
            self.cases.log_event("code_wrong", "requester", case, {"attempt": self.codes.wrong_count(_budget(case.id))})
            return Outcome.WRONG
        if result == Check.LOCKED:
            if not any(f.code == "verification_locked" for f in case.open_flags):
                self.cases.flag(case.id, "verification_locked",
                                "too many wrong codes: check the case, then unlock and resend a code")
            return Outcome.LOCKED
        if result == Check.EXPIRED:
            return Outcome.EXPIRED
        return self.code_passed(case.id, slot)

    def code_passed(self, case_id: str, slot: int) -> Outcome:
        """The requester controls the slot's address. Verify now, unless an agent must decide first."""
        case = self.cases.get(case_id)
        challenge = case.verification["challenges"][slot]
        pending = [name for name, state in case.verification.get("gates", {}).items()
                   if state not in ("accepted", "checked")]
        if pending:
            def keep(c: Case) -> None:
                c.verification["code_ok"] = {"slot": slot, "address": challenge["address"],
                                             "at": self.service.now().isoformat()}
                c.verification["status"] = "awaiting_agent"

            self.cases.record(case.id, "code_passed", "requester", keep, {"kind": challenge["basis"]})
            self.cases.flag(case.id, "identity_review", "the code was right; an agent must still decide: "
                                                        + ", ".join(sorted(pending)))
            return Outcome.AWAITING_AGENT
        self.complete(case.id, challenge["address"], "email_code", "requester")
        return Outcome.VERIFIED

    def complete(self, case_id: str, address: str, method: str, actor: str) -> Case:
        """The `verify` transition: the only way a case becomes verified (code, or an agent's ID check)."""
        now = self.service.now().isoformat()

        def verified(c: Case) -> None:
            v = c.verification
            v.update(verified=True, method=method, at=now, status="verified")
            if c.third_party:
                # Data is looked up for the subject at their address on file; it goes to the mandated requester.
                subject_address = subject_address_on_file(c)
                v.update(verified_email=subject_address, delivery_email=address, requester_verified=address)
                c.subject.email = subject_address
                c.subject.identifiers = identifiers_linked_to(subject_address, c.subject.identifiers,
                                                              v.get("subject_contacts", []))
            else:
                v.update(verified_email=address, delivery_email=address)
                c.subject.email = address
                c.subject.identifiers = identifiers_linked_to(address, c.subject.identifiers, v.get("contacts", []))

        return self.cases.transition(case_id, "verify", actor, mutate=verified, detail={"method": method})

    def resend(self, token: str, ip: str) -> Outcome:
        opened = self.open_link(token)
        if opened is None:
            return Outcome.INVALID
        case, slot = opened
        if case.state != State.AWAITING_IDENTITY or case.frozen:
            return Outcome.INVALID
        if self.codes.is_locked(_budget(case.id)):
            return Outcome.LOCKED
        for name, key, limit in (("verify_resend", case.id, RESENDS_PER_HOUR), ("verify_resend_ip", ip, 20)):
            throttle = Throttle(self.service.store, self.service.now, name, limit, timedelta(hours=1))
            if throttle.retry_after(key):
                return Outcome.THROTTLED
            throttle.fail(key)
        self.service.outbox.enqueue(Effect(SEND_CODE, key=f"{case.id}:code:{slot}:resend:{secrets.token_hex(8)}",
                                           case_id=case.id, payload={"slot": slot}))
        return Outcome.SENT

    def report_not_me(self, token: str) -> bool:
        """'This wasn't me': freeze the case (nothing is approved or delivered) and alert agents.

        Works from a code mail's link and from the notice sent to the subject of a third-party request."""
        opened = self.open_link(token) or self.open_link(token, purpose="notice")
        if opened is None:
            return False
        case, slot = opened
        basis = case.verification["challenges"][slot]["basis"] if slot >= 0 else "subject"

        def freeze(c: Case) -> None:
            c.frozen = True

        self.cases.record(case.id, "report_not_me", "requester", freeze, {"kind": basis})
        self.cases.flag(case.id, "reported_not_me", f"someone at a {basis.replace('_', ' ')} address said they did "
                                                    "not make this request: the case is frozen")
        return True

    # --- agents (bot.web.identity_desk) ----------------------------------------------------------
    def unlock_and_resend(self, case_id: str, actor: str) -> Case:
        case = self.cases.get(case_id)
        self.codes.unlock(_budget(case.id))
        case = self.cases.resolve_flag(case.id, "verification_locked", actor)
        for slot, _ in enumerate(case.verification.get("challenges", [])):
            self.service.outbox.enqueue(Effect(SEND_CODE, key=f"{case.id}:code:{slot}:unlock:v{case.version}",
                                               case_id=case.id, payload={"slot": slot}))
        return case


def subject_address_on_file(case: Case) -> str:
    """For a third-party request: the subject's address on file (their given address when it is)."""
    on_file = [c["email"] for c in case.verification.get("subject_contacts", []) if c.get("email")]
    given = normalize_email(case.subject.email)
    if given and given in on_file:
        return given
    return on_file[0] if on_file else given


def _budget(case_id: str) -> str:
    return f"verify:{case_id}"


def _contact_docs(contacts: Iterable[Any]) -> list[dict[str, Any]]:
    docs = []
    for contact in contacts:
        address = normalize_email(getattr(contact, "email", "") or "")
        if address:
            docs.append({"email": address, "source": str(getattr(contact, "source", "")),
                         "matched_on": str(getattr(contact, "matched_on", ""))})
    return docs


def contacts_as_objects(docs: list[dict[str, Any]]) -> list[OnFileContact]:
    return [OnFileContact(d["email"], d["source"], d["matched_on"]) for d in docs]


def verifier_of(service: Service) -> Verifier:
    return service.shared("verifier", lambda: Verifier(service))


def setup(service: Service) -> None:
    verifier = verifier_of(service)
    service.cases.add_planner(verifier.plan)
    # a source or the mail server down for hours must not leave a request without its code: keep
    # trying (the case is flagged meanwhile, and the flag goes when it goes through)
    service.outbox.register(START, lambda effect: verifier.start(effect["case_id"]), keep_trying=True)
    service.outbox.register(SEND_CODE, lambda effect: verifier.send_code(effect["case_id"], effect["payload"]["slot"]),
                            keep_trying=True)
    from bot.web.verify import blueprint

    service.blueprints.append(blueprint)
