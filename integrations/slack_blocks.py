"""Slack messages about cases, in Block Kit: texts from the locale catalogues, every value escaped.

Pure functions of a case and a `Render` (language, links, whether personal data may be shown).
Untrusted text (anything from an email, a reason an agent typed, a flag's detail) reaches Slack only
through `escape_mrkdwn`, so it cannot ping `<!channel>` or hide a link (SECURITY.md rule 6); links,
mentions and dates are built here from validated parts and marked safe with the `Mrkdwn` type.
Block Kit reference: https://docs.slack.dev/reference/block-kit/blocks
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from typing import Any, Iterable
from urllib.parse import quote

from bot.i18n import t
from bot.models import Case, State

ACTION_PREFIX = "dsar_"
_MAX_SECTION = 2900  # a section's text may hold 3000 characters
_MAX_BLOCKS = 45  # a message may hold 50 blocks

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,20}")


class Mrkdwn(str):
    """Text safe to put in Slack mrkdwn: escaped by `escape_mrkdwn` or built here from validated parts."""


def escape_mrkdwn(text: object) -> Mrkdwn:
    """Escape the three characters Slack gives meaning to: `&`, `<`, `>`.

    https://docs.slack.dev/messaging/formatting-message-text#escaping
    """
    return Mrkdwn(str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def _safe(value: object) -> Mrkdwn:
    return value if isinstance(value, Mrkdwn) else escape_mrkdwn(value)


def tr(key: str, language: str, **values: object) -> Mrkdwn:
    """A catalogue text with every value escaped (unless already `Mrkdwn`)."""
    return Mrkdwn(t(key, language, **{name: _safe(value) for name, value in values.items()}))


def mention(slack_id: str) -> Mrkdwn:
    """`<@U…>` for a user, `<!subteam^S…>` for a user group; anything else is shown, inert."""
    if _USER_ID.fullmatch(slack_id):
        return Mrkdwn(f"<@{slack_id}>")
    if _GROUP_ID.fullmatch(slack_id):
        return Mrkdwn(f"<!subteam^{slack_id}>")
    return escape_mrkdwn(slack_id)


def actor_label(actor: str, language: str) -> Mrkdwn:
    """Who did something: a Slack user is mentioned, a desk agent named by login, the bot by name."""
    kind, _, rest = actor.partition(":")
    if kind == "slack" and _USER_ID.fullmatch(rest):
        return mention(rest)
    if actor in ("", "system"):
        return tr("slack.actor.system", language)
    return escape_mrkdwn(rest or actor)


def link(url: str, label: object) -> Mrkdwn:
    """`<url|label>` for http(s) URLs only; the label is escaped, the URL cannot break out."""
    if not re.match(r"https?://[^\s]+$", url or "", re.IGNORECASE):
        return _safe(label)
    target = quote(url, safe=":/?#[]@!$&'()*+,;=%~-._").replace("&", "&amp;")
    return Mrkdwn(f"<{target}|{_safe(label)}>")


def slack_time(at: datetime) -> Mrkdwn:
    """A date Slack shows in each reader's time zone, with a UTC fallback."""
    fallback = at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return Mrkdwn(f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>")


@dataclass(frozen=True)
class Render:
    """How to show things: language, where links point, whether names and emails may appear."""

    language: str
    base_url: str
    tz: tzinfo
    show_personal_data: bool = False

    def case_url(self, ref: str) -> str:
        return f"{self.base_url.rstrip('/')}/desk/cases/{quote(ref)}"

    def desk_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/desk/"

    def ref_link(self, ref: str) -> Mrkdwn:
        return link(self.case_url(ref), ref)

    def tr(self, key: str, **values: object) -> Mrkdwn:
        return tr(key, self.language, **values)

    def plain(self, key: str, limit: int = 75, **values: object) -> dict[str, Any]:
        """A plain_text object (button labels, modal titles): never parsed for mentions or links."""
        return {"type": "plain_text", "text": t(key, self.language, **values)[:limit], "emoji": False}


def section_text(text: Mrkdwn) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def context(*texts: Mrkdwn) -> dict[str, Any]:
    return {"type": "context", "elements": [section_text(text) for text in texts]}


# --- pieces of a case ---------------------------------------------------------------------------
def rights_text(case: Case, r: Render) -> Mrkdwn:
    return escape_mrkdwn(", ".join(t(f"right.{right}", r.language) for right in case.rights))


def state_text(state: str, r: Render) -> Mrkdwn:
    return escape_mrkdwn(t(f"state.{state}", r.language))


def due_text(case: Case, r: Render) -> Mrkdwn:
    due = case.effective_due.isoformat()
    return r.tr("slack.due.extended", due=due) if case.extension else escape_mrkdwn(due)


def received_day(case: Case, r: Render) -> date:
    return case.received_at.astimezone(r.tz).date()


def _field(r: Render, label_key: str, value: object) -> dict[str, str]:
    return section_text(Mrkdwn(f"*{escape_mrkdwn(t(label_key, r.language))}*\n{_safe(value)}"))


def _case_fields(case: Case, r: Render, due: Mrkdwn | None = None) -> list[dict[str, str]]:
    fields = [
        _field(r, "slack.field.rights", rights_text(case, r)),
        _field(r, "slack.field.channel", case.channel),
        _field(r, "slack.field.received", received_day(case, r).isoformat()),
        _field(r, "slack.field.due", due or due_text(case, r)),
        _field(r, "slack.field.state", state_text(case.state, r)),
        _field(r, "slack.field.assignee",
               actor_label(case.assignee, r.language) if case.assignee else r.tr("slack.none")),
    ]
    if case.open_flags:
        fields.append(_field(r, "slack.field.flags", ", ".join(f.code for f in case.open_flags)))
    return fields


def _links(case: Case, r: Render) -> dict[str, Any]:
    texts = []
    if case.ticket.get("id"):
        label = r.tr("slack.case.ticket_label", system=case.ticket.get("system", ""), id=case.ticket["id"])
        texts.append(r.tr("slack.case.ticket", link=link(case.ticket.get("url", ""), label)))
    desk = link(r.case_url(case.ref), r.tr("slack.case.open_in_desk", ref=case.ref))
    texts.append(r.tr("slack.case.desk", link=desk))
    return context(*texts)


def button(r: Render, action: str, value: str, style: str = "",
           confirm: dict[str, Any] | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "action_id": ACTION_PREFIX + action,
                              "text": r.plain(f"slack.button.{action}"), "value": value}
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = confirm
    return button


def personal_lines(r: Render, personal: dict[str, str]) -> Mrkdwn:
    """Requester, data subject, email subject: shown only when `show_personal_data` is on."""
    return Mrkdwn("\n".join(f"*{escape_mrkdwn(t(key, r.language))}*: {escape_mrkdwn(value)}"
                            for key, value in personal.items() if value))


# --- what a button is about ---------------------------------------------------------------------
@dataclass(frozen=True)
class Binding:
    """What a button is about: the case, the draft hash shown and the case version shown."""

    case_id: str
    draft_hash: str
    version: int

    def encode(self) -> str:
        return json.dumps({"c": self.case_id, "h": self.draft_hash, "v": self.version}, separators=(",", ":"))

    @classmethod
    def decode(cls, value: str | dict[str, Any] | None) -> "Binding | None":
        """From a button value (JSON) or a modal's metadata; None when it is not one of ours."""
        try:
            data = value if isinstance(value, dict) else json.loads(value or "")
            binding = cls(str(data["c"]), str(data.get("h", "")), int(data["v"]))
        except (ValueError, KeyError, TypeError):
            return None
        return binding if re.fullmatch(r"[0-9a-f]{8,64}", binding.case_id) else None



# --- the case post and its thread ---------------------------------------------------------------
def case_post(case: Case, r: Render, personal: dict[str, str] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The channel post for a case; kept current with chat.update as the case moves."""
    title = r.tr("slack.case.new", ref=r.ref_link(case.ref))
    blocks: list[dict[str, Any]] = [{"type": "section", "text": section_text(title), "fields": _case_fields(case, r)}]
    if r.show_personal_data and personal and any(personal.values()):
        blocks.append({"type": "section", "text": section_text(personal_lines(r, personal))})
    blocks.append(_links(case, r))
    if not case.assignee and case.state not in _DONE:
        blocks.append({"type": "actions", "block_id": f"dsar_case_{case.version}",
                       "elements": [button(r, "assign", Binding(case.id, "", case.version).encode())]})
    text = r.tr("slack.case.fallback", ref=case.ref, rights=rights_text(case, r), due=case.effective_due.isoformat())
    return text, blocks


_DONE = frozenset({State.DELIVERED, State.CLOSED, State.REFUSED, State.REJECTED_IDENTITY, State.WITHDRAWN,
                   State.DISMISSED})


def update_text(case: Case, payload: dict[str, Any], r: Render) -> Mrkdwn:
    """One line in the case thread for a change (planned with what changed, rendered when posted)."""
    action = payload.get("action", "")
    actor = actor_label(payload.get("actor", "system"), r.language)
    ref = case.ref
    if action == "extend":
        text = r.tr("slack.update.extend", ref=ref, due=case.extended_due.isoformat(), actor=actor)
    elif action == "flag":
        code = payload.get("code", "")
        detail = next((f.detail for f in case.flags if f.code == code), "")
        text = r.tr("slack.update.flag_detail" if detail else "slack.update.flag", ref=ref, code=code,
                    detail=detail[:300])
    elif action == "assign":
        assignee = payload.get("assignee") or case.assignee
        text = r.tr("slack.update.assign", ref=ref, assignee=actor_label(assignee, r.language), actor=actor)
    elif action == "request_changes":
        text = r.tr("slack.update.request_changes", ref=ref, actor=actor)
    elif payload.get("before") != payload.get("after"):
        text = r.tr("slack.update.state", ref=ref, before=state_text(payload.get("before", ""), r),
                    after=state_text(payload.get("after", ""), r), actor=actor)
    else:
        text = r.tr("slack.update.text", ref=ref, text=action)
    if payload.get("reason"):
        text = Mrkdwn(text + "\n" + r.tr("slack.update.reason", reason=str(payload["reason"])[:500]))
    return text


def reminder_text(case: Case, kind: str, today: date, r: Render, last_notice_day: date) -> Mrkdwn:
    due = case.effective_due
    left = (due - today).days
    ref, state = r.ref_link(case.ref), state_text(case.state, r)
    if kind == "overdue":
        return r.tr("slack.reminder.overdue", ref=ref, due=due.isoformat(), days=-left, state=state)
    if kind == "extension_decision":
        return r.tr("slack.reminder.extension_decision", ref=ref, last_day=last_notice_day.isoformat())
    if kind == "unassigned":
        return r.tr("slack.reminder.unassigned", ref=ref, received=received_day(case, r).isoformat())
    key = "slack.reminder.due_today" if left <= 0 else "slack.reminder.due_in_one" if left == 1 else \
        "slack.reminder.due_in"
    return r.tr(key, ref=ref, due=due.isoformat(), days=left, state=state)


def escalation_text(case: Case, reminder: Mrkdwn, who: str, r: Render) -> Mrkdwn:
    if who:
        return r.tr("slack.escalation", mention=mention(who), ref=case.ref, text=reminder)
    return r.tr("slack.escalation.no_one", ref=case.ref, text=reminder)


# --- lists: the digest and /dsar week ------------------------------------------------------------
@dataclass
class _Sections:
    """Lines packed into sections under Slack's size limits; what does not fit is counted."""

    blocks: list[dict[str, Any]] = field(default_factory=list)
    left_out: int = 0
    _lines: list[str] = field(default_factory=list)

    def line(self, text: Mrkdwn, counted: bool = True) -> None:
        if sum(len(x) + 1 for x in self._lines) + len(text) > _MAX_SECTION:
            self.flush()
        if len(self.blocks) >= _MAX_BLOCKS:
            self.left_out += counted
            return
        self._lines.append(text)

    def flush(self) -> None:
        if self._lines:
            self.blocks.append({"type": "section", "text": section_text(Mrkdwn("\n".join(self._lines)))})
            self._lines = []


def _row(r: Render, ref: str, due: str, days_left: int, state: str) -> Mrkdwn:
    if days_left < 0:
        return r.tr("slack.digest.row_overdue", ref=r.ref_link(ref), due=due, days=-days_left,
                    state=state_text(state, r))
    return r.tr("slack.digest.row", ref=r.ref_link(ref), due=due, days=days_left, state=state_text(state, r))


def digest_message(rows: list[dict[str, Any]], today: date, r: Render) -> tuple[str, list[dict[str, Any]]]:
    """The daily list of open cases grouped by urgency, most urgent first (refs and dates only)."""
    if not rows:
        text = r.tr("slack.digest.empty", date=today.isoformat())
        return text, [{"type": "section", "text": section_text(text)}]
    sections = _Sections()
    sections.blocks.append({"type": "section", "text": section_text(r.tr("slack.digest.title", date=today.isoformat(),
                                                                       count=len(rows)))})
    for urgency in ("overdue", "due_soon", "on_track"):
        group = sorted((row for row in rows if row.get("urgency") == urgency), key=lambda x: (x["days_left"], x["ref"]))
        if group:
            sections.line(r.tr("slack.digest.group", label=t(f"urgency.{urgency}", r.language)), counted=False)
            for row in group:
                sections.line(_row(r, row["ref"], row["due"], row["days_left"], row["state"]))
            sections.flush()
    return r.tr("slack.digest.fallback", date=today.isoformat(), count=len(rows)), _with_more(sections, r)


def week_message(cases: Iterable[Case], today: date, until: date, r: Render) -> tuple[str, list[dict[str, Any]]]:
    """`/dsar week`: open cases due by `until` (overdue ones included), soonest first."""
    due = [c for c in cases if c.effective_due <= until]
    if not due:
        text = r.tr("slack.command.week.empty", until=until.isoformat())
        return text, [{"type": "section", "text": section_text(text)}]
    sections = _Sections()
    sections.blocks.append({"type": "section", "text": section_text(r.tr("slack.command.week.title",
                                                                       until=until.isoformat(), count=len(due)))})
    for case in sorted(due, key=lambda c: (c.effective_due, c.ref)):
        sections.line(_row(r, case.ref, case.effective_due.isoformat(), (case.effective_due - today).days, case.state))
    sections.flush()
    return r.tr("slack.command.week.fallback", until=until.isoformat(), count=len(due)), _with_more(sections, r)


def case_summary(case: Case, today: date, r: Render) -> tuple[str, list[dict[str, Any]]]:
    """`/dsar <ref>`: the case at a glance, for the person who asked."""
    left = (case.effective_due - today).days
    days = r.tr("slack.command.summary.days_left", days=left) if left >= 0 else \
        r.tr("slack.command.summary.days_late", days=-left)
    title = r.tr("slack.command.summary.title", ref=r.ref_link(case.ref), state=state_text(case.state, r))
    blocks = [{"type": "section", "text": section_text(title),
               "fields": _case_fields(case, r, due=Mrkdwn(f"{due_text(case, r)} ({days})"))},
              _links(case, r)]
    return Mrkdwn(f"{case.ref}: {state_text(case.state, r)}"), blocks


def _with_more(sections: _Sections, r: Render) -> list[dict[str, Any]]:
    sections.flush()
    if not sections.left_out:
        return sections.blocks
    more = r.tr("slack.digest.more", count=sections.left_out, link=link(r.desk_url(), r.desk_url()))
    return [*sections.blocks, context(more)]
