"""The Drafter: from the records gathered for a case to the Art. 15 letter and export files, for approval.

`draft(case, result)` redacts other people's data, reads the register for what was found, renders
the letter (HTML for the desk and the PDF, text for the mail body) and the exports (PDF with the
data annex, HTML, JSON, CSV in a ZIP), writes them encrypted to the vault under
`drafts/<case_id>/<hash prefix>/` and returns the draft record kept on the case (see __init__).
"""
from __future__ import annotations

import logging
from typing import Any

from bot import clock
from bot.config import jurisdiction_of
from bot.drafting.chart import bar_chart
from bot.drafting.export_csv import csv_zip
from bot.drafting.export_json import export_document, to_json_bytes
from bot.drafting.facts import Facts, Register, build_facts
from bot.drafting.files import DraftFile, write_draft
from bot.drafting.letters import letter_language, render_html, strings
from bot.drafting.parties import controller
from bot.drafting.pdf import html_to_pdf
from bot.drafting.plaintext import html_to_text
from bot.drafting.redaction import Redactor, Rules, load_rules
from bot.drafting.repeat import earlier_requests
from bot.drafting.tables import annex_view, tables
from bot.models import Case, Right
from bot.vault import safe_name, vault_of
from integrations.base import Misconfigured

log = logging.getLogger(__name__)

HTML, TEXT, PDF = "text/html; charset=utf-8", "text/plain; charset=utf-8", "application/pdf"
JSON, ZIP = "application/json", "application/zip"


class Drafter:
    def __init__(self, service: Any, register: Register | None = None, rules: Rules | None = None) -> None:
        self.service = service
        self._register = register
        self.rules = rules or load_rules(service.config.drafting.redaction_rules)
        self.vault = vault_of(service)

    # --- parts ---------------------------------------------------------------------------------
    def register(self) -> Register:
        """The register of processing: given, registered as a component, or loaded from the config."""
        if self._register is None:
            self._register = self.service.component("register")
        if self._register is None:
            try:
                from bot.register import load_register
            except ImportError:
                raise Misconfigured("no register of processing: bot.register is not installed") from None
            self._register = load_register(self.service.config.playbooks.register)
        return self._register

    @staticmethod
    def _searched(result: Any, records: list, facts: Facts) -> list[str]:
        """Systems searched, by product name when known (a source that found nothing shows its own name)."""
        names = [s.system for s in facts.systems]
        known = {r.source for r in records}
        statuses = getattr(result, "sources", None) or getattr(result, "status", None) or {}
        for name, status in statuses.items():
            system = (status or {}).get("system") or name
            if name not in known and system not in names:
                names.append(system)
        return names

    @staticmethod
    def _records(case: Case, result: Any) -> list:
        """All records; for a portability-only request, those Art. 20 covers when the gatherer says which."""
        if Right.PORTABILITY in case.rights and Right.ACCESS not in case.rights and hasattr(result, "records_for"):
            return list(result.records_for(Right.PORTABILITY.value))
        return list(result.records)

    # --- the draft -----------------------------------------------------------------------------
    def draft(self, case: Case, result: Any) -> dict[str, Any]:
        """Write the letter and files for `case` from the gathering `result`; return the draft record."""
        config = self.service.config
        now = self.service.now()
        today = clock.receipt_date(now, jurisdiction_of(config))
        language = letter_language(case.language)
        L = strings(language)
        records, redactions = Redactor(self.rules, L["redacted"]).redact(case, self._records(case, result))
        facts = build_facts(records, self.register(), language)
        rank = {s.system: i for i, s in enumerate(facts.systems)}
        grouped = sorted(tables(records, facts.category_of), key=lambda t: (rank[t.system], t.source, t.entity))
        kind = "access" if records else "no_data"
        ref = safe_name(case.ref, default="case")
        names = {"pdf": f"{ref}-answer.pdf", "html": f"{ref}-answer.html", "json": f"{ref}-data.json",
                 "csv": f"{ref}-data-csv.zip"}
        shipped = ["pdf", "html", "json", "csv"] if kind == "access" else ["pdf"]
        by_kind: dict[str, int] = {}
        for r in redactions:
            by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + r["count"]
        context = {
            "config": config, "today": today, "language": language, "facts": facts,
            "chart": bar_chart([(s.system, s.count) for s in facts.systems], L["chart_title"]),
            "files": [{"name": names[k], "format": L["formats"][k]} for k in shipped],
            "redactions": [{"label": L["redaction_kinds"].get(k, k), "count": n} for k, n in sorted(by_kind.items())],
            "portability": Right.PORTABILITY in case.rights, "searched": self._searched(result, records, facts),
        }
        _, subject, letter_html = render_html(kind, case, context)
        files = [DraftFile("letter.html", letter_html.encode("utf-8"), HTML, "letter_html"),
                 DraftFile("letter.txt", html_to_text(letter_html).encode("utf-8"), TEXT, "letter_text")]
        if kind == "access":
            annex = annex_view(grouped, L["value_yes"], L["value_no"], config.drafting.annex_max_rows)
            _, _, full_html = render_html(kind, case, {**context, "annex": annex})
            document = export_document(
                case_ref=case.ref, generated_at=now.isoformat(), language=language, controller=controller(config),
                subject={"name": case.subject.name, "email": case.subject.email}, grouped=grouped, facts=facts,
                redactions=redactions)
            files += [DraftFile(names["pdf"], html_to_pdf(full_html), PDF, "pdf"),
                      DraftFile(names["html"], full_html.encode("utf-8"), HTML, "html"),
                      DraftFile(names["json"], to_json_bytes(document), JSON, "json"),
                      DraftFile(names["csv"], csv_zip(grouped, now.astimezone(jurisdiction_of(config).tz)), ZIP, "csv")]
        else:
            files.append(DraftFile(names["pdf"], html_to_pdf(letter_html), PDF, "pdf"))
        hash_, entries = write_draft(self.vault, case.id, files)
        warnings = [f"the register does not describe {m}" for m in facts.missing]
        if facts.missing:
            self.service.cases.flag(case.id, "register_incomplete",
                                    "register has no entry for: " + ", ".join(facts.missing))
        earlier = earlier_requests(case, self.service.cases.all(), config.drafting.repeat_window_days)
        log.info("case %s drafted: %s letter, %d records, %d redactions, hash %s", case.ref, kind, len(records),
                 len(redactions), hash_[:12])
        return {
            "hash": hash_, "files": entries, "at": now.isoformat(), "language": language, "kind": kind,
            "subject": subject, "records": len(records),
            "letter_html_path": next(e["vault_path"] for e in entries if e["role"] == "letter_html"),
            "letter_text_path": next(e["vault_path"] for e in entries if e["role"] == "letter_text"),
            "redactions": redactions, "repeat_requests": earlier, "warnings": warnings,
        }
