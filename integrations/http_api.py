"""A small JSON-over-HTTPS client shared by the SaaS integrations (helpdesks), built on `requests`.

It maps every failure to the three outcomes of integrations.base: NotReady (down, timed out,
5xx, 429 with its Retry-After), AuthFailed (401/403), Misconfigured (other 4xx). After a 429 it
stops calling the system until the Retry-After has passed, so a queue of effects does not keep
hammering a helpdesk that asked us to wait. Only method and path are logged: query strings and
bodies carry personal data.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from ipaddress import ip_address
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

import requests

from integrations.base import AuthFailed, Misconfigured, NotReady

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 3600.0


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """RFC 9110 Retry-After: delay-seconds or an HTTP-date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def header(headers: Mapping[str, str], name: str) -> str:
    """Case-insensitive header lookup on any mapping (Flask's headers or a plain dict)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return ""


def check_base_url(section: str, url: str) -> str:
    """HTTPS, except on the loopback interface (local fakes in tests): credentials travel in headers."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        raise Misconfigured(f"[{section}] base_url {url!r} is not a URL (https://yourshop.example.com)")
    loopback = parts.hostname == "localhost"
    try:
        loopback = loopback or ip_address(parts.hostname).is_loopback
    except ValueError:
        pass
    if parts.scheme != "https" and not loopback:
        raise Misconfigured(f"[{section}] base_url must use https:// (credentials are sent with every request)")
    return url.rstrip("/")


class ApiClient:
    """One outside API: base URL, auth, timeouts, error mapping and rate-limit pause."""

    def __init__(self, system: str, base_url: str, auth: tuple[str, str], *, timeout: float = 15.0,
                 now: Callable[[], datetime] | None = None, session: requests.Session | None = None) -> None:
        self.system = system
        self.base_url = check_base_url(system, base_url)
        self.timeout = timeout
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.session = session or requests.Session()
        self.session.auth = auth
        self.session.headers.update({"Accept": "application/json", "User-Agent": "dsarbot"})
        self._paused_until: datetime | None = None

    def request(self, method: str, path: str, *, ok: Iterable[int] = (200, 201), **kwargs: Any) -> requests.Response:
        """Send; return the response when its status is in `ok`, else raise the mapped outcome."""
        now = self.now()
        if self._paused_until is not None and now < self._paused_until:
            wait = (self._paused_until - now).total_seconds()
            raise NotReady(f"{self.system} asked us to wait (rate limited)", retry_after=wait)
        try:
            response = self.session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        except requests.Timeout as exc:
            raise NotReady(f"{self.system} did not answer {method} {path} in time") from exc
        except requests.ConnectionError as exc:
            raise NotReady(f"{self.system} unreachable ({method} {path}): {type(exc).__name__}") from exc
        status = response.status_code
        if status in tuple(ok):
            return response
        log.info("%s %s %s -> %s", self.system, method, path, status)
        if status == 429:
            wait = retry_after_seconds(response.headers.get("Retry-After"), self.now())
            if wait:
                self._paused_until = self.now() + timedelta(seconds=wait)
            raise NotReady(f"{self.system} rate limit (429)", retry_after=wait)
        if status >= 500:
            raise NotReady(f"{self.system} answered {status} to {method} {path}",
                           retry_after=retry_after_seconds(response.headers.get("Retry-After"), self.now()))
        if status in (401, 403):
            raise AuthFailed(f"{self.system} refused our credentials ({status}); check the API token/key")
        raise Misconfigured(f"{self.system} answered {status} to {method} {path}: {_error_summary(response)}")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise NotReady(f"{self.system} sent a non-JSON answer to {method} {path}") from exc


def _error_summary(response: requests.Response) -> str:
    """The error's code/title only: error bodies may echo what we sent (personal data)."""
    try:
        body = response.json()
    except ValueError:
        return "no JSON body"
    if isinstance(body, dict):
        for key in ("error", "code", "description", "title"):
            value = body.get(key)
            if isinstance(value, str):
                return value[:120]
            if isinstance(value, dict) and isinstance(value.get("title"), str):
                return value["title"][:120]
    return "see the helpdesk's error log"
