"""Fake Brevo API v3 (contact details with statistics, contact lists, email campaigns, account).

Shapes from https://developers.brevo.com/reference/get-contact-info (contact with `listIds`,
`listUnsubscribed`, `emailBlacklisted` and 90 days of `statistics`), .../get-lists (`lists` and
`count`, `limit` at most 50), .../get-email-campaign, .../get-account, .../delete-contact (204);
auth by `api-key` header; 429 carries `x-sib-ratelimit-reset` (https://developers.brevo.com/docs/limit-headers).
Brevo stores emails in lowercase and looks them up case-insensitively.
"""
from __future__ import annotations

from typing import Any

from tests.fakes.http_fake import FakeApi, Reply, Seen
from tests.fakes.people import FIRST, LAST, NAMESAKE, SUBJECT

API_KEY = "xkeysib-0123456789abcdef-Test"
NOT_FOUND = Reply(404, {"code": "document_not_found", "message": "Contact does not exist"})


def _contact(cid: int, email: str, list_ids: list[int], unsubscribed: list[int],
             statistics: dict[str, Any]) -> dict[str, Any]:
    return {"email": email, "id": cid, "emailBlacklisted": False, "smsBlacklisted": True,
            "createdAt": "2023-02-01T09:00:00.000+01:00", "modifiedAt": "2024-04-01T09:00:00.000+02:00",
            "attributes": {"FIRSTNAME": FIRST, "LASTNAME": LAST, "SMS": "33612345678", "DOUBLE_OPT-IN": "1"},
            "listIds": list_ids, "listUnsubscribed": unsubscribed, "statistics": statistics}


SUBJECT_STATS = {
    "messagesSent": [{"campaignId": 21, "eventTime": "2024-03-01T10:00:00.000+01:00"},
                     {"campaignId": 22, "eventTime": "2024-03-15T10:00:00.000+01:00"}],
    "delivered": [{"campaignId": 21, "eventTime": "2024-03-01T10:00:05.000+01:00"}],
    "hardBounces": [], "softBounces": [], "complaints": [],
    "opened": [{"campaignId": 21, "count": 2, "eventTime": "2024-03-01T12:30:00.000+01:00", "ip": "203.0.113.9"}],
    "clicked": [{"campaignId": 21, "links": [{"count": 1, "eventTime": "2024-03-01T12:31:00.000+01:00",
                                              "ip": "203.0.113.9", "url": "https://shop.example/soldes"}]}],
    "unsubscriptions": {"userUnsubscription": [{"campaignId": 22, "eventTime": "2024-03-16T08:00:00.000+01:00",
                                                "ip": "203.0.113.9"}],
                        "adminUnsubscription": []},
}


class FakeBrevo(FakeApi):
    def __init__(self) -> None:
        super().__init__("Brevo", lambda seen: seen.headers.get("api-key") == API_KEY,
                         Reply(401, {"code": "unauthorized", "message": "Key not found"}))
        self.contacts = [_contact(42, SUBJECT, [2, 5], [7], SUBJECT_STATS),
                         _contact(43, NAMESAKE, [2], [], {"messagesSent": [{"campaignId": 23,
                                                                           "eventTime": "2024-01-01T10:00:00Z"}]})]
        names = {2: "Newsletter", 5: "Ventes privées", 7: "Conseils beauté"}
        self.lists = [{"id": i, "name": names.get(i, f"Liste {i}"), "totalBlacklisted": 0, "totalSubscribers": 10,
                       "uniqueSubscribers": 10, "folderId": 1} for i in range(1, 61)]
        self.campaigns = {21: {"id": 21, "name": "Soldes de printemps", "subject": "Les soldes commencent !",
                               "type": "classic", "status": "sent", "sentDate": "2024-03-01T10:00:00.000+01:00"},
                          22: {"id": 22, "name": "Nouveautés mars", "subject": "Du nouveau en boutique",
                               "type": "classic", "status": "sent", "sentDate": "2024-03-15T10:00:00.000+01:00"}}
        self.route("GET", "/v3/contacts/lists", self._lists)
        self.route("GET", "/v3/contacts/{identifier}", self._get_contact)
        self.route("DELETE", "/v3/contacts/{identifier}", self._delete_contact)
        self.route("GET", "/v3/emailCampaigns/{campaign_id}", self._campaign)
        self.route("GET", "/v3/account", lambda seen: {"email": "admin@shop.example", "companyName": "Demo Shop",
                                                        "plan": [{"type": "free", "credits": 300}]})

    def _find(self, identifier: str) -> dict[str, Any] | None:
        for contact in self.contacts:
            if identifier.lower() == contact["email"] or identifier == str(contact["id"]):
                return contact
        return None

    def _get_contact(self, seen: Seen, identifier: str) -> Reply:
        if seen.arg("identifierType") not in ("", "email_id"):
            return Reply(400, {"code": "invalid_parameter", "message": "identifierType is not valid"})
        contact = self._find(identifier)
        return Reply(200, contact) if contact else NOT_FOUND

    def _delete_contact(self, seen: Seen, identifier: str) -> Reply:
        contact = self._find(identifier)
        if not contact:
            return NOT_FOUND
        self.contacts.remove(contact)
        return Reply(204)

    def _lists(self, seen: Seen) -> Reply:
        limit, offset = int(seen.arg("limit", "10")), int(seen.arg("offset", "0"))
        if not 0 <= limit <= 50:
            return Reply(400, {"code": "out_of_range", "message": "limit should be between 0 and 50"})
        return Reply(200, {"lists": self.lists[offset:offset + limit], "count": len(self.lists)})

    def _campaign(self, seen: Seen, campaign_id: str) -> Reply:
        campaign = self.campaigns.get(int(campaign_id))
        return Reply(200, campaign) if campaign else Reply(404, {"code": "document_not_found",
                                                                 "message": "Campaign ID does not exist"})
