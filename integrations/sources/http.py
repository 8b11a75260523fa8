"""HTTP plumbing shared by the SaaS sources: host-pinned requests, bounded retries, pagination.

Every request goes to the operator-configured base URL only (SECURITY.md: no request to an
address the operator did not configure): redirects are not followed and pagination links are
followed only when they point inside the base URL. Failures map to the three outcomes of
`integrations.base`: AuthFailed (401/403), NotReady (429 after retries, 5xx, timeouts, network)
and Misconfigured (wrong URL, unexpected answers). Messages never carry URLs, query strings or
bodies, since those hold the subject's email and sometimes credentials.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import SplitResult, urljoin, urlsplit

import requests

from integrations.base import AuthFailed, Misconfigured, NotReady

log = logging.getLogger(__name__)  # urllib3 is kept at INFO by bot.logs (its DEBUG lines carry query strings)

_LINK_RE = re.compile(r'<([^>]*)>\s*;\s*rel="?([^";,]+)"?')


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str, where: str) -> str:
    """The base URL must be absolute https (plain http only on loopback, for local fakes and tests)."""
    parts = urlsplit(base_url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Misconfigured(f"{where}: base_url {base_url!r} is not an absolute http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise Misconfigured(f"{where}: base_url must use https (credentials would travel in clear)")
    if parts.query or parts.fragment:
        raise Misconfigured(f"{where}: base_url must not carry a query or fragment")
    return base_url.rstrip("/")


def parse_retry_after(value: str | None, now: Callable[[], datetime]) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now()).total_seconds())


def _origin(parts: SplitResult) -> tuple[str, str, int]:
    """Scheme, host and port, the port made explicit so that `:443` and no port compare equal."""
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


def next_link(link_header: str | None) -> str | None:
    """The rel="next" target of an RFC 8288 Link header, if any."""
    for target, rel in _LINK_RE.findall(link_header or ""):
        if "next" in rel.split():
            return target
    return None


class HttpClient:
    """A small JSON client for one configured API; each instance talks to one origin only."""

    def __init__(self, base_url: str, *, system: str, headers: Mapping[str, str] | None = None,
                 auth: tuple[str, str] | None = None, auth_params: Mapping[str, str] | None = None,
                 timeout: float = 10.0, max_retries: int = 3, max_retry_wait: float = 30.0,
                 max_pages: int = 200, wait_headers: tuple[str, ...] = ("Retry-After",),
                 session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self._origin = _origin(parts)
        self._base_path = parts.path.rstrip("/") + "/"
        self.system = system
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.max_pages = max_pages
        self.wait_headers = wait_headers  # where a 429 says how long to wait (Brevo: x-sib-ratelimit-reset)
        self.sleep = sleep
        self.now = now
        self._auth = auth
        self._auth_params = dict(auth_params or {})
        self._session = session or requests.Session()
        self._session.headers.update({"Accept": "application/json", "User-Agent": "dsarbot"})
        self._session.headers.update(dict(headers or {}))

    # --- addresses -----------------------------------------------------------------------------
    def url(self, path_or_url: str) -> str:
        """Resolve a path against the base URL and refuse anything outside it."""
        if path_or_url.startswith(("http://", "https://")):
            url = path_or_url
        else:
            url = self.base_url + "/" + path_or_url.lstrip("/")
        parts = urlsplit(urljoin(self.base_url + "/", url))
        if _origin(parts) != self._origin or \
                not (parts.path.rstrip("/") + "/").startswith(self._base_path):
            raise Misconfigured(f"{self.system} pointed to an address outside the configured base_url; "
                                "refusing to follow it")
        return url

    # --- one request ---------------------------------------------------------------------------
    def request(self, method: str, path_or_url: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, what: str = "", not_found_ok: bool = False) -> requests.Response | None:
        """Send one request with bounded retries; None for a 404 when `not_found_ok`."""
        url = self.url(path_or_url)
        what = what or method
        query = {**dict(params or {}), **self._auth_params}
        attempt = 0
        while True:
            try:
                response = self._session.request(method, url, params=query or None, json=json,
                                                  auth=self._auth, timeout=self.timeout,
                                                  allow_redirects=False)
            except requests.Timeout:
                raise NotReady(f"{self.system} did not answer within {self.timeout:g}s ({what})") from None
            except requests.ConnectionError:
                raise NotReady(f"cannot connect to {self.system} at {self._origin[1]} ({what})") from None
            except requests.RequestException as exc:
                raise NotReady(f"{self.system} request failed ({what}): {type(exc).__name__}") from None
            status = response.status_code
            log.debug("%s %s %s -> %s", self.system, method, what, status)
            if status in (401, 403):
                raise AuthFailed(f"credentials refused by {self.system} (HTTP {status}, {what})")
            if status == 404 and not_found_ok:
                return None
            if status == 429 or (status >= 500 and method == "GET"):
                wait = next((w for w in (parse_retry_after(response.headers.get(h), self.now)
                                         for h in self.wait_headers) if w is not None), None)
                if wait is None:
                    wait = float(2 ** attempt)  # no hint: short exponential backoff
                if attempt >= self.max_retries or wait > self.max_retry_wait:
                    reason = "rate limited (HTTP 429)" if status == 429 else f"server error (HTTP {status})"
                    raise NotReady(f"{self.system} {reason} after {attempt + 1} attempt(s) ({what})",
                                   retry_after=wait)
                attempt += 1
                self.sleep(wait)
                continue
            if 300 <= status < 400:
                raise Misconfigured(f"{self.system} answered with a redirect (HTTP {status}, {what}); "
                                    "check base_url: dsarbot does not follow redirects")
            if status >= 500:
                raise NotReady(f"{self.system} server error (HTTP {status}, {what})")
            if status >= 400:
                raise Misconfigured(f"{self.system} rejected the request (HTTP {status}, {what}); "
                                    "check base_url and the API version")
            return response

    def get_json(self, path_or_url: str, params: Mapping[str, Any] | None = None, *, what: str = "",
                 not_found_ok: bool = False) -> Any:
        response = self.request("GET", path_or_url, params=params, what=what, not_found_ok=not_found_ok)
        return None if response is None else self.decode(response, what)

    def decode(self, response: requests.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise Misconfigured(f"{self.system} answered {what} with something that is not JSON; "
                                "check base_url") from None

    # --- pagination ----------------------------------------------------------------------------
    def _bounded(self, pages: int, what: str) -> None:
        if pages > self.max_pages:
            raise Misconfigured(f"{self.system} {what}: more than {self.max_pages} pages; "
                                "raise max_pages or narrow the query")

    def pages_by_link(self, path: str, params: Mapping[str, Any], key: str, what: str) -> Iterator[list[Any]]:
        """RFC 8288 `Link: <...>; rel="next"` pagination (Shopify page_info); links stay in base_url."""
        target: str | None = path
        query: Mapping[str, Any] | None = params
        pages = 0
        while target:
            pages += 1
            self._bounded(pages, what)
            response = self.request("GET", target, params=query, what=what)
            assert response is not None
            yield list((self.decode(response, what) or {}).get(key) or [])
            target = next_link(response.headers.get("Link"))
            query = None  # the next link carries its own query (page_info must be used as given)

    def pages_by_number(self, path: str, params: Mapping[str, Any], what: str,
                        total_header: str = "X-WP-TotalPages") -> Iterator[list[Any]]:
        """`page=N` pagination bounded by a total-pages header (WordPress / WooCommerce)."""
        page = 1
        while True:
            self._bounded(page, what)
            response = self.request("GET", path, params={**params, "page": page}, what=what)
            assert response is not None
            items = self.decode(response, what) or []
            if not isinstance(items, list):
                raise Misconfigured(f"{self.system} {what}: expected a list")
            yield items
            try:
                total = int(response.headers.get(total_header, "1"))
            except ValueError:
                total = 1
            if not items or page >= total:
                return
            page += 1

    def pages_by_cursor(self, path: str, params: Mapping[str, Any], what: str) -> Iterator[list[Any]]:
        """Stripe lists: `has_more` plus `starting_after=<last id>`."""
        query = dict(params)
        pages = 0
        while True:
            pages += 1
            self._bounded(pages, what)
            body = self.get_json(path, query, what=what) or {}
            items = list(body.get("data") or [])
            yield items
            if not body.get("has_more") or not items:
                return
            query["starting_after"] = items[-1]["id"]

    def pages_by_offset(self, path: str, params: Mapping[str, Any], key: str, what: str, *,
                        count_param: str = "count", page_size: int = 100,
                        total_key: str = "total_items") -> Iterator[list[Any]]:
        """`offset`/`count` pagination with a total in the body (Mailchimp; Brevo uses limit/count)."""
        offset = 0
        pages = 0
        while True:
            pages += 1
            self._bounded(pages, what)
            body = self.get_json(path, {**params, count_param: page_size, "offset": offset}, what=what) or {}
            items = list(body.get(key) or [])
            yield items
            offset += len(items)
            total = body.get(total_key)
            if not items or (isinstance(total, int) and offset >= total) or len(items) < page_size:
                return
