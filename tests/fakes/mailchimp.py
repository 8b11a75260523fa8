"""Fake Mailchimp Marketing API 3.0 (ping, lists, list members by hash, activity feed, permanent delete).

Shapes from https://mailchimp.com/developer/marketing/api/ (Lists `lists`/`total_items`; List
members keyed by the MD5 of the lowercase email, with `status`, `ip_signup`, `timestamp_signup`,
`ip_opt`, `timestamp_opt`, `marketing_permissions`; the member activity feed `activity` items with
`activity_type` and `created_at_timestamp`; `count`/`offset` pagination, count at most 1000;
problem+json errors such as "API Key Invalid"); auth is HTTP Basic `anystring:<key>`.
"""
from __future__ import annotations

import base64
import hashlib
from typing import Any

from tests.fakes.http_fake import FakeApi, Reply, Seen
from tests.fakes.people import FIRST, LAST, NAMESAKE, PHONE, SUBJECT

API_KEY = "0123456789abcdef0123456789abcdef-us6"
ERRORS = "https://mailchimp.com/developer/marketing/docs/errors/"
LISTS = {"a1b2c3d4e5": "Newsletter FR", "f6g7h8i9j0": "Clients VIP", "k1l2m3n4o5": "Ateliers"}


def md5(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


def _authorized(seen: Seen) -> bool:
    header = seen.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return False
    _user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return password == API_KEY


def _member(email: str, list_id: str, status: str) -> dict[str, Any]:
    return {"id": md5(email), "email_address": email, "unique_email_id": f"u{md5(email)[:9]}",
            "contact_id": f"c{md5(email)[:31]}", "full_name": f"{FIRST} {LAST}", "web_id": 123456,
            "email_type": "html", "status": status, "unsubscribe_reason": "", "consents_to_one_to_one_messaging": True,
            "merge_fields": {"FNAME": FIRST, "LNAME": LAST, "PHONE": PHONE, "ADDRESS": ""},
            "interests": {"9143cf3bd1": True}, "stats": {"avg_open_rate": 0.5, "avg_click_rate": 0.25},
            "ip_signup": "198.51.100.23", "timestamp_signup": "2022-11-05T18:20:00+00:00",
            "ip_opt": "198.51.100.23", "timestamp_opt": "2022-11-05T18:25:41+00:00", "member_rating": 3,
            "last_changed": "2024-02-10T08:00:00+00:00", "language": "fr", "vip": False, "email_client": "Gmail",
            "location": {"latitude": 45.76, "longitude": 4.83, "gmtoff": 1, "dstoff": 2, "country_code": "FR",
                         "timezone": "Europe/Paris", "region": "ARA"},
            "marketing_permissions": [{"marketing_permission_id": "e2e0b7d5a1", "text": "Email", "enabled": True}],
            "last_note": {}, "source": "Hosted Signup Form", "tags_count": 1, "tags": [{"id": 11, "name": "fidèle"}],
            "list_id": list_id, "_links": []}


def _activity(n: int) -> list[dict[str, Any]]:
    kinds = ["sent", "open", "click", "open", "unsub"]
    return [{"activity_type": kinds[i % len(kinds)], "created_at_timestamp": f"2024-03-0{i + 1}T10:00:00+00:00",
             "campaign_id": "4f8a2b1c9d", "campaign_title": "Soldes de printemps",
             **({"link_clicked": "https://shop.example/soldes"} if kinds[i % len(kinds)] == "click" else {})}
            for i in range(n)]


class FakeMailchimp(FakeApi):
    def __init__(self) -> None:
        super().__init__("Mailchimp", _authorized, Reply(401, {
            "type": ERRORS, "title": "API Key Invalid", "status": 401,
            "detail": "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            "instance": "a2c4e6"}))
        # the subject signed up as "Camille.Martin@Example.com": Mailchimp keys members by the lowercase hash
        self.members = {("a1b2c3d4e5", md5(SUBJECT)): _member("Camille.Martin@Example.com", "a1b2c3d4e5",
                                                               "subscribed"),
                        ("f6g7h8i9j0", md5(SUBJECT)): _member(SUBJECT, "f6g7h8i9j0", "unsubscribed"),
                        ("a1b2c3d4e5", md5(NAMESAKE)): _member(NAMESAKE, "a1b2c3d4e5", "subscribed")}
        self.activity = {("a1b2c3d4e5", md5(SUBJECT)): _activity(5), ("f6g7h8i9j0", md5(SUBJECT)): _activity(1),
                         ("a1b2c3d4e5", md5(NAMESAKE)): _activity(2)}
        self.route("GET", "/3.0/ping", lambda seen: {"health_status": "Everything's Chimpy!"})
        self.route("GET", "/3.0/lists", self._lists)
        self.route("GET", "/3.0/lists/{list_id}/members/{hash}", self._member)
        self.route("GET", "/3.0/lists/{list_id}/members/{hash}/activity-feed", self._activity)
        self.route("POST", "/3.0/lists/{list_id}/members/{hash}/actions/delete-permanent", self._delete)

    @staticmethod
    def _window(seen: Seen) -> tuple[int, int] | Reply:
        count, offset = int(seen.arg("count", "10")), int(seen.arg("offset", "0"))
        if not 1 <= count <= 1000:
            return Reply(400, {"type": ERRORS, "title": "Invalid Resource", "status": 400,
                               "detail": "count must be between 1 and 1000"})
        return count, offset

    def _not_found(self) -> Reply:
        return Reply(404, {"type": ERRORS, "title": "Resource Not Found", "status": 404,
                           "detail": "The requested resource could not be found.", "instance": "b3d5f7"})

    def _lists(self, seen: Seen) -> Reply:
        window = self._window(seen)
        if isinstance(window, Reply):
            return window
        count, offset = window
        items = [{"id": i, "name": n, "stats": {"member_count": 3}} for i, n in LISTS.items()]
        return Reply(200, {"lists": items[offset:offset + count], "total_items": len(items)})

    def _member(self, seen: Seen, list_id: str, hash: str) -> Reply:
        if list_id not in LISTS:
            return self._not_found()
        member = self.members.get((list_id, hash))
        return Reply(200, member) if member else self._not_found()

    def _activity(self, seen: Seen, list_id: str, hash: str) -> Reply:
        window = self._window(seen)
        if isinstance(window, Reply):
            return window
        count, offset = window
        if (list_id, hash) not in self.members:
            return self._not_found()
        items = self.activity.get((list_id, hash), [])
        return Reply(200, {"activity": items[offset:offset + count], "email_id": hash, "list_id": list_id,
                           "total_items": len(items)})

    def _delete(self, seen: Seen, list_id: str, hash: str) -> Reply:
        if self.members.pop((list_id, hash), None) is None:
            return self._not_found()
        return Reply(204)
