"""Brevo (ex-Sendinblue) source: the contact, its consent, list memberships and campaign activity.

Documented shapes this follows (https://developers.brevo.com/reference):
- `GET /v3/contacts/{identifier}?identifierType=email_id` (Get a contact's details, with the
  last 90 days of campaign statistics): https://developers.brevo.com/reference/get-contact-info
- `GET /v3/contacts/lists?limit=&offset=` (list names; `count` is the total):
  https://developers.brevo.com/reference/get-lists
- `GET /v3/emailCampaigns/{campaignId}` (campaign name and subject, to explain the activity):
  https://developers.brevo.com/reference/get-email-campaign
- Auth: `api-key` header: https://developers.brevo.com/docs/how-it-works
- 429 with `x-sib-ratelimit-reset`: https://developers.brevo.com/docs/limit-headers
- `DELETE /v3/contacts/{identifier}`: https://developers.brevo.com/reference/delete-contact
"""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from integrations.base import SourceResult
from integrations.sources.api_source import ApiSource, SourceSettings, injected, pick, same_email

SYSTEM = "Brevo"
#: statistics key -> event name shown in records
EVENTS = {"messagesSent": "sent", "delivered": "delivered", "opened": "opened", "clicked": "clicked",
          "hardBounces": "hard_bounce", "softBounces": "soft_bounce", "complaints": "complaint"}
UNSUBSCRIPTIONS = {"userUnsubscription": "unsubscribed_by_user", "adminUnsubscription": "unsubscribed_by_admin"}
EVENT_FIELDS = ("eventTime", "ip", "count", "url")


class BrevoSource(ApiSource):
    system = SYSTEM

    def __init__(self, name: str, client: Any, max_campaigns: int) -> None:
        super().__init__(name, client)
        self.max_campaigns = max_campaigns

    def _contact(self, email: str) -> dict[str, Any] | None:
        contact = self.client.get_json(f"v3/contacts/{quote(email, safe='')}", {"identifierType": "email_id"},
                                       what="contacts", not_found_ok=True)
        return contact if contact and same_email(contact.get("email"), email) else None

    def _find(self, emails: list[str], out: SourceResult) -> None:
        list_names: dict[int, str] | None = None
        campaigns: dict[Any, dict[str, Any]] = {}
        for email in emails:
            contact = self._contact(email)
            if contact is None:
                continue
            cid = contact.get("id")
            self.discover(out, "brevo_contact_id", cid)
            self.record(out, "contacts", cid, pick(contact, ("id", "email", "attributes", "createdAt", "modifiedAt")),
                        "contact", ["email"])
            if list_names is None:
                list_names = self._list_names()
            subscribed, unsubscribed = contact.get("listIds") or [], contact.get("listUnsubscribed") or []
            consent = pick(contact, ("emailBlacklisted", "smsBlacklisted"))
            consent["listUnsubscribed"] = [{"list_id": i, "list_name": list_names.get(i, "")} for i in unsubscribed]
            self.record(out, "contacts.consent", cid, consent, "consent", ["email"])
            for list_id in subscribed:
                self.record(out, "contacts.lists", f"{cid}/{list_id}",
                            {"list_id": list_id, "list_name": list_names.get(list_id, ""), "subscribed": True},
                            "marketing", ["email"])
            for event, item in self._events(contact.get("statistics") or {}):
                info = self._campaign(item.get("campaignId"), campaigns)
                fields = {"event": event, "campaign_id": item.get("campaignId"), **info, **pick(item, EVENT_FIELDS)}
                self.record(out, "contacts.statistics", f"{cid}/{event}/{item.get('campaignId', '')}/"
                            f"{item.get('eventTime', '')}", fields, "marketing", ["email"])

    @staticmethod
    def _events(statistics: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        events: list[tuple[str, dict[str, Any]]] = []
        for key, event in EVENTS.items():
            for item in statistics.get(key) or []:
                if key == "clicked":  # one entry per campaign, with the links clicked in it
                    events += [(event, {"campaignId": item.get("campaignId"), **link})
                               for link in item.get("links") or []]
                else:
                    events.append((event, item))
        unsubscriptions = statistics.get("unsubscriptions") or {}
        for key, event in UNSUBSCRIPTIONS.items():
            events += [(event, item) for item in unsubscriptions.get(key) or []]
        return events

    def _list_names(self) -> dict[int, str]:
        names: dict[int, str] = {}
        for page in self.client.pages_by_offset("v3/contacts/lists", {}, "lists", "contacts/lists",
                                                count_param="limit", page_size=50, total_key="count"):
            names.update({item.get("id"): item.get("name", "") for item in page})
        return names

    def _campaign(self, campaign_id: Any, cache: dict[Any, dict[str, Any]]) -> dict[str, Any]:
        """Name and subject of a campaign (bounded: a contact of ten years must not cost 10,000 calls)."""
        if campaign_id is None:
            return {}
        if campaign_id not in cache:
            if len(cache) >= self.max_campaigns:
                return {}
            body = self.client.get_json(f"v3/emailCampaigns/{int(campaign_id)}", what="emailCampaigns",
                                        not_found_ok=True) or {}
            cache[campaign_id] = {"campaign_name": body.get("name", ""), "campaign_subject": body.get("subject", "")}
        return cache[campaign_id]

    def _erase(self, emails: list[str], out: SourceResult) -> None:
        for email in emails:
            contact = self._contact(email)
            if contact is not None:
                self.client.request("DELETE", f"v3/contacts/{int(contact['id'])}", what="contacts/delete")
                self.record(out, "contacts", contact["id"], {"action": "deleted"}, "erasure", ["email"])

    def _check(self) -> None:
        self.client.get_json("v3/account", what="account")


def build(name: str, settings: dict[str, Any], context: Any = None, **kwargs: Any) -> BrevoSource:
    """Settings: api_key[_env], base_url (default https://api.brevo.com), max_campaigns (default 200)."""
    conf = SourceSettings(name, "brevo", settings, {"api_key", "max_campaigns"}, kwargs.get("environ"))
    client = conf.client(conf.base_url("https://api.brevo.com"), system=SYSTEM,
                         headers={"api-key": conf.secret("api_key")},
                         wait_headers=("Retry-After", "x-sib-ratelimit-reset"), **injected(context, kwargs))
    return BrevoSource(name, client, int(conf.number("max_campaigns", 200)))
