"""Secure delivery of an approved answer, only to the verified address on file (SECURITY.md rules 2, 4).

On "approve" a planner queues `delivery.send`. Its handler re-checks that the files are exactly the
approved ones (`verify_draft_files`), then, by `[delivery] method`:
- "portal": mails a link to `/portal/<token>` (bot.web.portal). The link expires after
  `link_ttl_days`; opening it needs a fresh one-time code mailed to the same address at that
  moment; the download is a POST (link scanners only GET) and each right code allows one download;
- "encrypted_email": mails the files in an AES-256 ZIP; the password is NOT in a mail: it is shown
  on the portal after a fresh code. A second mail would land in the same mailbox as the archive
  and prove nothing more; the portal step adds a fresh proof of control, is audited and expires.
Either way the case moves to `delivered` once the mail is sent. Exports (the draft's files and any
archive) stay encrypted in the vault and are purged by the `delivery.purge` job.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from bot.addresses import normalize_email
from bot.cases import Change
from bot.exports.aes_zip import encrypted_zip, new_password, plain_zip
from bot.faults import checkpoint
from bot.vault import vault_of
from bot.models import Case, State
from bot.otp import Check
from bot.outbox import Effect, PermanentFailure
from bot.secret_mail import send_secret_mail
from bot.service import Service
from bot.verification import Outcome, verifier_of

log = logging.getLogger(__name__)

SEND = "delivery.send"
PORTAL_CODE = "delivery.portal_code"
DELIVERIES = "deliveries"
GRANTS = "portal_grants"
#: Draft file roles the requester receives (bot.drafting); letter_html/letter_text are for the desk and mail.
REQUESTER_ROLES = frozenset({"pdf", "html", "json", "csv"})
CODES_PER_HOUR = 5


def delivery_address(case: Case) -> str:
    """The one address the answer may go to: the verified one (the mandated requester's for a third party)."""
    v = case.verification
    if not v.get("verified"):
        return ""
    return normalize_email(v.get("delivery_email") or v.get("verified_email") or "")


def requester_files(draft: dict[str, Any]) -> list[dict[str, Any]]:
    files = draft.get("files") or []
    chosen = [f for f in files if f.get("role") in REQUESTER_ROLES]
    return chosen or [f for f in files if f.get("role") not in ("letter_html", "letter_text")]


@dataclass(frozen=True)
class Download:
    filename: str
    data: bytes
    content_type: str


class Deliveries:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.cases = service.cases
        self.store = service.store
        self.vault = vault_of(service)
        self.verifier = verifier_of(service)
        self.cfg = service.config.delivery

    # --- planning and sending -----------------------------------------------------------------
    @staticmethod
    def plan(change: Change) -> Iterable[Effect]:
        if change.action == "approve":
            yield Effect(SEND, key=f"{change.case.id}:delivery:v{change.case.version}", case_id=change.case.id)

    def _approved_files(self, case: Case) -> dict[str, bytes] | None:
        """The approved bytes, or None (and a flag) when anything differs from what was approved."""
        from bot.drafting import read_verified, verify_draft_files

        if case.approval.get("draft_hash") != case.draft.get("hash") or not verify_draft_files(self.vault, case.draft):
            self.cases.flag(case.id, "delivery_mismatch", "the files differ from the approved draft: nothing was "
                                                          "sent; draft again and approve the new draft")
            return None
        contents = read_verified(self.vault, case.draft)
        return {f["name"]: contents[f["name"]] for f in requester_files(case.draft)}

    def send(self, effect: dict[str, Any]) -> dict[str, Any]:
        case = self.cases.get(effect["case_id"])
        if case.state != State.APPROVED:
            return {"skipped": str(case.state)}
        if case.frozen:
            self.cases.flag(case.id, "delivery_blocked", "the case is frozen ('this wasn't me'): nothing was sent")
            return {"skipped": "frozen"}
        recipient = delivery_address(case)
        if not recipient:
            self.cases.flag(case.id, "delivery_blocked", "no verified address to deliver to")
            raise PermanentFailure("no verified address on the case")
        files = self._approved_files(case)
        if files is None:
            return {"skipped": "draft mismatch"}
        delivery = self._delivery_doc(case, effect["key"], recipient, len(files))
        base = self.service.config.service.base_url.rstrip("/")
        token = self.verifier.tokens.derive("portal", delivery["id"], _at(delivery["expires_at"]),
                                            delivery_id=delivery["id"], case_id=case.id)
        context = {"link": f"{base}/portal/{token}", "expires": _at(delivery["expires_at"]).date().isoformat(),
                   "files": len(files)}
        if delivery["method"] == "encrypted_email":
            password = self._password(case, delivery)
            archive = encrypted_zip(files, password)
            send_secret_mail(self.service, case, recipient, "delivery_encrypted", context,
                             key=f"{case.id}:delivery:{delivery['id']}",
                             attachments=[(f"{case.ref}.zip", "application/zip", archive)])
        else:
            send_secret_mail(self.service, case, recipient, "delivery_link", context,
                             key=f"{case.id}:delivery:{delivery['id']}")
        checkpoint("deliver.mailed")

        def delivered(c: Case) -> None:
            c.delivery = {"id": delivery["id"], "method": delivery["method"], "at": self.service.now().isoformat(),
                          "expires_at": delivery["expires_at"], "purge_at": delivery["purge_at"],
                          "files": len(files), "draft_hash": c.draft["hash"]}

        self.cases.transition(case.id, "deliver", "system", mutate=delivered,
                              detail={"method": delivery["method"], "files": len(files)})
        log.info("case %s delivered (%s, %d files)", case.ref, delivery["method"], len(files))
        return {"delivered": delivery["id"]}

    def _delivery_doc(self, case: Case, effect_key: str, recipient: str, files: int) -> dict[str, Any]:
        """One delivery per approval; a retried effect finds the same one (same id, same link)."""
        delivery_id = hashlib.sha256(effect_key.encode()).hexdigest()[:32]
        now = self.service.now()
        expires = now + timedelta(days=self.cfg.link_ttl_days)
        purge = now + timedelta(days=max(self.cfg.purge_after_days, self.cfg.link_ttl_days))
        self.store.insert_new(DELIVERIES, delivery_id, {
            "id": delivery_id, "case_id": case.id, "draft_hash": case.draft["hash"], "method": self.cfg.method,
            "recipient": recipient, "created_at": now.isoformat(), "expires_at": expires.isoformat(),
            "purge_at": purge.isoformat(), "files": files, "status": "active", "downloads": 0,
        })
        return self.store.get(DELIVERIES, delivery_id)

    def _password(self, case: Case, delivery: dict[str, Any]) -> str:
        path = f"exports/{case.id}/{delivery['id']}.password"
        if self.vault.exists(path):
            return self.vault.read(path).decode()
        password = new_password()
        self.vault.write(path, password.encode())
        return password

    # --- the portal (bot.web.portal) ----------------------------------------------------------
    def open(self, token: str) -> tuple[dict[str, Any], Case] | None:
        """The live delivery behind a portal link, or None: unknown, expired, purged, or frozen case."""
        link = self.verifier.tokens.resolve(token, "portal")
        if link is None:
            return None
        delivery = self.store.get(DELIVERIES, link["delivery_id"])
        if delivery is None or delivery["status"] != "active" or self.service.now() >= _at(delivery["expires_at"]):
            return None
        case = self.cases.get(delivery["case_id"])
        if case.frozen or case.state not in (State.DELIVERED, State.CLOSED):
            return None
        return delivery, case

    def request_code(self, token: str) -> Outcome:
        opened = self.open(token)
        if opened is None:
            return Outcome.INVALID
        delivery, _ = opened
        if self.verifier.codes.is_locked(_budget(delivery["id"])):
            return Outcome.LOCKED
        from bot.throttle import Throttle

        throttle = Throttle(self.store, self.service.now, "portal_code", CODES_PER_HOUR, timedelta(hours=1))
        if throttle.retry_after(delivery["id"]):
            return Outcome.THROTTLED
        throttle.fail(delivery["id"])
        self.service.outbox.enqueue(Effect(PORTAL_CODE, key=f"{delivery['id']}:code:{secrets.token_hex(8)}",
                                           case_id=delivery["case_id"], payload={"delivery_id": delivery["id"]}))
        return Outcome.SENT

    def send_code(self, effect: dict[str, Any]) -> dict[str, Any]:
        """Fresh code, to the delivery's own recipient (the verified address), never anywhere else."""
        delivery = self.store.get(DELIVERIES, effect["payload"]["delivery_id"])
        if delivery is None or delivery["status"] != "active":
            return {"skipped": "inactive"}
        case = self.cases.get(delivery["case_id"])
        issued = self.verifier.codes.issue(_budget(delivery["id"]), "portal", replaces=delivery.get("challenge_id", ""))
        self.store.update(DELIVERIES, delivery["id"], lambda d: {**d, "challenge_id": issued.challenge_id})
        send_secret_mail(self.service, case, delivery["recipient"], "portal_code",
                         {"code": issued.code, "ttl_minutes": self.service.config.verification.code_ttl_minutes},
                         key=f"{case.id}:portal_code:{issued.challenge_id}")
        self.cases.log_event("portal_code_sent", "system", case, {"kind": "portal"})
        return {"sent": True}

    def unlock(self, token: str, code: str) -> tuple[Outcome, str]:
        """A right code opens one grant (one download, or one look at the password)."""
        opened = self.open(token)
        if opened is None:
            return Outcome.INVALID, ""
        delivery, case = opened
        result = self.verifier.codes.check(delivery.get("challenge_id", ""), code, "portal")
        if result == Check.WRONG:
            self.cases.log_event("portal_code_wrong", "requester", case, {"kind": "portal"})
            return Outcome.WRONG, ""
        if result == Check.LOCKED:
            if not any(f.code == "portal_locked" for f in case.open_flags):
                self.cases.flag(case.id, "portal_locked", "too many wrong codes on the download page")
            return Outcome.LOCKED, ""
        if result == Check.EXPIRED:
            return Outcome.EXPIRED, ""
        grant = secrets.token_urlsafe(24)
        until = self.service.now() + timedelta(minutes=self.cfg.unlock_minutes)
        self.store.put(GRANTS, _grant_key(grant), {"delivery_id": delivery["id"], "expires_at": until.isoformat(),
                                                   "used": False})
        self.cases.log_event("portal_unlocked", "requester", case, {"kind": delivery["method"]})
        return Outcome.VERIFIED, grant

    def _use_grant(self, delivery: dict[str, Any], grant: str) -> bool:
        used: dict[str, bool] = {}

        def consume(doc: dict[str, Any] | None) -> dict[str, Any] | None:
            ok = (doc is not None and not doc["used"] and doc["delivery_id"] == delivery["id"]
                  and self.service.now() < _at(doc["expires_at"]))
            used["ok"] = ok
            return {**doc, "used": True, "used_at": self.service.now().isoformat()} if ok else doc

        self.store.update(GRANTS, _grant_key(grant or "-"), consume)
        return used.get("ok", False)

    def grant_alive(self, token: str, grant: str) -> bool:
        opened = self.open(token)
        doc = self.store.get(GRANTS, _grant_key(grant or "-"))
        return bool(opened and doc and not doc["used"] and doc["delivery_id"] == opened[0]["id"]
                    and self.service.now() < _at(doc["expires_at"]))

    def download(self, token: str, grant: str) -> Download | None:
        """The approved files, once per grant. None when the link, the grant or the files are not right."""
        opened = self.open(token)
        if opened is None or opened[0]["method"] != "portal":
            return None
        delivery, case = opened
        if not self._use_grant(delivery, grant):
            return None
        if case.draft.get("hash") != delivery["draft_hash"]:
            self.cases.flag(case.id, "delivery_mismatch", "the draft changed after delivery: download refused")
            return None
        files = self._approved_files(case)
        if files is None:
            return None
        self.store.update(DELIVERIES, delivery["id"], lambda d: {**d, "downloads": d.get("downloads", 0) + 1})
        self.cases.log_event("download", "requester", case, {"files": len(files)})
        if len(files) == 1:
            (name, data), = files.items()
            entry = next(f for f in case.draft["files"] if f["name"] == name)
            return Download(name, data, entry.get("content_type") or "application/octet-stream")
        return Download(f"{case.ref}.zip", plain_zip(files), "application/zip")

    def reveal_password(self, token: str, grant: str) -> str | None:
        opened = self.open(token)
        if opened is None or opened[0]["method"] != "encrypted_email":
            return None
        delivery, case = opened
        if not self._use_grant(delivery, grant):
            return None
        self.cases.log_event("password_shown", "requester", case, {"kind": "encrypted_email"})
        return self.vault.read(f"exports/{case.id}/{delivery['id']}.password").decode()

    # --- purge ----------------------------------------------------------------------------------
    def purge_expired(self) -> int:
        """Delete exports whose time is up: the draft's files, archives and passwords. Audited per case."""
        now = self.service.now()
        purged = 0
        for delivery in self.store.find(DELIVERIES, {"status": "active"}):
            if now < _at(delivery["purge_at"]):
                continue
            case = self.cases.get(delivery["case_id"])
            paths = [f["vault_path"] for f in case.draft.get("files", []) if f.get("vault_path")]
            for path in paths:
                self.vault.delete(path)
            self.vault.delete(f"exports/{case.id}")
            self.verifier.tokens.revoke_where(delivery_id=delivery["id"])
            self.store.update(DELIVERIES, delivery["id"], lambda d: {**d, "status": "purged", "purged_at": now.isoformat()})

            def mark(c: Case) -> None:
                c.delivery["purged_at"] = now.isoformat()

            self.cases.record(case.id, "export_purged", "system", mark, {"files": len(paths)})
            purged += 1
        return purged


def _budget(delivery_id: str) -> str:
    return f"portal:{delivery_id}"


def _grant_key(grant: str) -> str:
    return hashlib.sha256(grant.encode("utf-8", "surrogatepass")).hexdigest()


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def deliveries_of(service: Service) -> Deliveries:
    return service.shared("deliveries", lambda: Deliveries(service))


def setup(service: Service) -> None:
    deliveries = deliveries_of(service)
    service.cases.add_planner(Deliveries.plan)
    # a mail server down for hours must not lose an answer: keep trying, the case flagged meanwhile
    service.outbox.register(SEND, deliveries.send, keep_trying=True)
    service.outbox.register(PORTAL_CODE, deliveries.send_code, keep_trying=True)
    service.add_job("delivery.purge", deliveries.purge_expired, seconds=3600, single=True)
    from bot.web.portal import blueprint

    service.blueprints.append(blueprint)
