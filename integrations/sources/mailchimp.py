"""Mailchimp Marketing API source: audience memberships, opt-in evidence and campaign activity.

Documented shapes this follows (https://mailchimp.com/developer/marketing/api/):
- Root and auth: `https://<dc>.api.mailchimp.com/3.0/`, HTTP Basic `anystring:<api key>`, the
  data center being the key's suffix: https://mailchimp.com/developer/marketing/docs/fundamentals/
- `GET /3.0/lists?count=&offset=` (audiences; `total_items`): .../api/lists/get-lists-info/
- `GET /3.0/lists/{list_id}/members/{subscriber_hash}` (MD5 of the lowercase email; 404 when not
  a member): .../api/list-members/get-member-info/
- `GET /3.0/lists/{list_id}/members/{subscriber_hash}/activity-feed?count=&offset=` (opens,
  clicks, unsubscribes): .../api/list-member-activity-feed/view-recent-activity/
- `POST /3.0/lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent`:
  .../api/list-members/delete-list-member-permanent/
- `GET /3.0/ping` for the credential check: .../api/ping/ping/
Looking members up by hash is exact by construction (no full-text search, no near matches).
"""
from __future__ import annotations

import hashlib
from typing import Any

from integrations.base import Misconfigured, SourceResult
from integrations.sources.api_source import ApiSource, SourceSettings, injected, pick, same_email

SYSTEM = "Mailchimp"
PROFILE_FIELDS = ("id", "email_address", "full_name", "email_type", "merge_fields", "interests", "language",
                  "location", "email_client", "vip", "member_rating", "stats", "source", "last_changed",
                  "last_note", "list_id")
CONSENT_FIELDS = ("status", "ip_signup", "timestamp_signup", "ip_opt", "timestamp_opt", "marketing_permissions",
                  "unsubscribe_reason", "consents_to_one_to_one_messaging", "list_id")
# activity-feed items ("activity_type", "created_at_timestamp", ...) and the older /activity ones
ACTIVITY_FIELDS = ("activity_type", "action", "created_at_timestamp", "timestamp", "campaign_id", "campaign_title",
                   "title", "link_clicked", "url", "type", "parent_campaign", "ip")


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode("utf-8")).hexdigest()  # noqa: S324 - Mailchimp's id scheme


class MailchimpSource(ApiSource):
    system = SYSTEM

    def __init__(self, name: str, client: Any, list_ids: list[str], page_size: int) -> None:
        super().__init__(name, client)
        self.list_ids = list_ids
        self.page_size = page_size

    def _lists(self) -> dict[str, str]:
        """Audience id -> name: the configured ones, else every audience of the account."""
        names: dict[str, str] = {}
        for page in self.client.pages_by_offset("3.0/lists", {"fields": "lists.id,lists.name,total_items"}, "lists",
                                                "lists", page_size=self.page_size):
            names.update({item["id"]: item.get("name", "") for item in page if "id" in item})
        if self.list_ids:
            missing = [list_id for list_id in self.list_ids if list_id not in names]
            if missing:  # a wrong id would silently read as "not a member"
                raise Misconfigured(f"Mailchimp has no audience {missing[0]!r}; check list_ids")
            return {list_id: names[list_id] for list_id in self.list_ids}
        return names

    def _members(self, email: str, lists: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
        found = []
        for list_id in lists:
            member = self.client.get_json(f"3.0/lists/{list_id}/members/{subscriber_hash(email)}",
                                          what="lists/members", not_found_ok=True)
            if member and same_email(member.get("email_address"), email):
                found.append((list_id, lists[list_id], member))
        return found

    def _find(self, emails: list[str], out: SourceResult) -> None:
        lists = self._lists()
        for email in emails:
            for list_id, list_name, member in self._members(email, lists):
                key = f"{list_id}/{member.get('id') or subscriber_hash(email)}"
                self.discover(out, "mailchimp_contact_id", member.get("contact_id") or member.get("unique_email_id"))
                profile = pick(member, PROFILE_FIELDS)
                profile["list_name"] = list_name
                profile["tags"] = [tag.get("name", "") for tag in member.get("tags") or []]
                self.record(out, "lists.members", key, profile, "contact", ["email"])
                consent = pick(member, CONSENT_FIELDS)
                consent["list_name"] = list_name
                self.record(out, "lists.members.consent", key, consent, "consent", ["email"])
                self._activity(list_id, list_name, email, key, out)

    def _activity(self, list_id: str, list_name: str, email: str, key: str, out: SourceResult) -> None:
        index = 0
        for page in self.client.pages_by_offset(f"3.0/lists/{list_id}/members/{subscriber_hash(email)}/activity-feed",
                                                {}, "activity", "lists/members/activity-feed",
                                                page_size=self.page_size):
            for item in page:
                index += 1
                fields = pick(item, ACTIVITY_FIELDS)
                fields["list_name"] = list_name
                self.record(out, "lists.members.activity-feed", f"{key}/{index}", fields, "marketing", ["email"])

    def _erase(self, emails: list[str], out: SourceResult) -> None:
        lists = self._lists()
        for email in emails:
            for list_id, _name, member in self._members(email, lists):
                self.client.request("POST", f"3.0/lists/{list_id}/members/{subscriber_hash(email)}/actions/"
                                    "delete-permanent", what="lists/members/delete-permanent")
                self.record(out, "lists.members", f"{list_id}/{member.get('id', '')}", {"action": "deleted"},
                            "erasure", ["email"])

    def _check(self) -> None:
        self.client.get_json("3.0/ping", what="ping")


def build(name: str, settings: dict[str, Any], context: Any = None, **kwargs: Any) -> MailchimpSource:
    """Settings: api_key[_env] ("<key>-<dc>"), list_ids (default: all audiences), base_url, page_size."""
    conf = SourceSettings(name, "mailchimp", settings, {"api_key", "list_ids"}, kwargs.get("environ"))
    api_key = conf.secret("api_key")
    datacenter = api_key.rpartition("-")[2] if "-" in api_key else ""
    if not conf.get("base_url") and not datacenter.isalnum():
        raise Misconfigured(f"source {name!r} (mailchimp): api_key has no data center suffix (like -us6); "
                            "set base_url to https://<dc>.api.mailchimp.com")
    list_ids = conf.get("list_ids") or []
    if not isinstance(list_ids, list) or not all(isinstance(i, str) for i in list_ids):
        raise Misconfigured(f"source {name!r} (mailchimp): list_ids must be a list of audience ids")
    client = conf.client(conf.base_url(f"https://{datacenter}.api.mailchimp.com"), system=SYSTEM,
                         auth=("dsarbot", api_key), **injected(context, kwargs))
    return MailchimpSource(name, client, list_ids, conf.page_size(100, 1000))
