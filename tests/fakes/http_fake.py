"""A reusable local fake of an HTTP API: routes on method and path, checks auth, records requests.

Each system's fake (tests/fakes/<system>.py) registers the documented endpoints with their
documented response shapes. Tests can make the next N matching requests answer 429 with a
Retry-After (or a 5xx), hang past the client's timeout, be carried out but lose their answer
(`lose`: "did it happen?"), or drop every connection while the system is `down()`.
Handlers run one at a time (fakes keep plain dicts). A request that no route expects is
answered 501 and remembered: `assert_clean()` (called by the fixtures) then fails the test.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Seen:
    """One request as the fake received it."""

    method: str
    path: str  # percent-decoded
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def multipart(self) -> tuple[dict[str, list[str]], list[tuple[str, str, str, bytes]]]:
        """multipart/form-data: (fields, [(field name, file name, content type, data)])."""
        head = f"Content-Type: {self.headers.get('content-type', '')}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + self.body)
        fields: dict[str, list[str]] = {}
        files: list[tuple[str, str, str, bytes]] = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True) or b""
            if part.get_filename():
                files.append((name, part.get_filename(), part.get_content_type(), data))
            else:
                fields.setdefault(name, []).append(data.decode("utf-8"))
        return fields, files


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    method: str | None
    path: re.Pattern[str] | None
    remaining: int
    reply: Reply | None  # None: hang until the fake stops (unless `lose`)
    lose: bool = False  # carry the request out, then hang up without answering
    when: Callable[["Seen"], bool] | None = None


Handler = Callable[..., Any]


class FakeApi:
    """Threaded HTTP server on 127.0.0.1, port 0. Use as a context manager or start()/stop()."""

    def __init__(self, system: str, authorized: Callable[[Seen], bool],
                 unauthorized: Reply | None = None) -> None:
        self.system = system
        self.authorized = authorized
        self.unauthorized = unauthorized or Reply(401, {"error": "unauthorized"})
        self.requests: list[Seen] = []
        self.unexpected: list[str] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self.handling = threading.RLock()  # handlers (and tests acting as users of the system) one at a time
        self._down = False
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- set-up --------------------------------------------------------------------------------
    def route(self, method: str, template: str, handler: Handler) -> None:
        """`template` is a path with `{name}` segments; the handler gets (seen, **segments)."""
        pattern = re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
        pattern = re.sub(r"{(\w+)}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def fail(self, times: int, status: int = 429, headers: dict[str, str] | None = None,
             path: str | None = None, method: str | None = None, body: Any = None) -> None:
        """The next `times` requests (to `path`, a regex, if given) answer `status` instead."""
        self._faults.append(_Fault(method, re.compile(path) if path else None, times,
                                   Reply(status, body if body is not None else {"error": "injected"},
                                         dict(headers or {}))))

    def lose(self, times: int = 1, path: str | None = None, method: str | None = None,
             when: Callable[[Seen], bool] | None = None) -> None:
        """The next `times` matching requests (and `when(seen)`, if given) are carried out, but the
        connection closes before the answer: the client cannot know whether it happened."""
        self._faults.append(_Fault(method, re.compile(path) if path else None, times, None, lose=True, when=when))

    def down(self) -> None:
        """Every request is dropped (connection closed, no answer) until `up()`."""
        self._down = True

    def up(self) -> None:
        self._down = False

    def hang(self, path: str | None = None) -> None:
        """Matching requests get no answer until the fake stops (to exercise client timeouts)."""
        self._faults.append(_Fault(None, re.compile(path) if path else None, 10 ** 6, None))

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeApi":
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler, bind_and_activate=False)
        self._server.request_queue_size = 128  # bursts of clients (benchmarks) are queued, not refused
        self._server.server_bind()
        self._server.server_activate()
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "FakeApi":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def assert_clean(self) -> None:
        assert not self.unexpected, f"{self.system} fake got unexpected requests: {self.unexpected}"

    def calls(self, method: str, path_regex: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and re.fullmatch(path_regex, r.path)]

    # --- serving -------------------------------------------------------------------------------
    def _serve(self, http: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(http.path)
        length = int(http.headers.get("Content-Length") or 0)
        seen = Seen(http.command, unquote(parts.path), parse_qs(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in http.headers.items()}, http.rfile.read(length) if length else b"")
        with self._lock:
            self.requests.append(seen)
            if self._down:
                http.close_connection = True
                return None
            fault = self._take_fault(seen)
        if fault is not None and fault.lose:
            with self.handling:
                self._dispatch(seen)
            http.close_connection = True
            return None
        if fault is not None and fault.reply is None:
            self._release.wait(10)
            return self._send(http, Reply(503, {"error": "hung"}))
        if fault is not None and fault.reply is not None:
            return self._send(http, fault.reply)
        with self.handling:
            reply = self._dispatch(seen)
        return self._send(http, reply)

    def _dispatch(self, seen: Seen) -> Reply:
        if not self.authorized(seen):
            return self.unauthorized
        for method, pattern, handler in self._routes:
            match = pattern.match(seen.path)
            if method == seen.method and match:
                result = handler(seen, **match.groupdict())
                return result if isinstance(result, Reply) else Reply(200, result)
        self.unexpected.append(f"{seen.method} {seen.path}")
        return Reply(501, {"error": "unexpected request"})

    def _take_fault(self, seen: Seen) -> _Fault | None:
        for fault in self._faults:
            if fault.remaining > 0 and (fault.method in (None, seen.method)) and \
                    (fault.path is None or fault.path.search(seen.path)) and (fault.when is None or fault.when(seen)):
                fault.remaining -= 1
                return fault
        return None

    @staticmethod
    def _send(http: BaseHTTPRequestHandler, reply: Reply) -> None:
        data = b"" if reply.body is None or reply.status == 204 else json.dumps(reply.body).encode("utf-8")
        http.send_response(reply.status)
        headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
        for name, value in headers.items():
            http.send_header(name, value)
        http.send_header("Content-Length", str(len(data)))
        http.end_headers()
        if data:
            http.wfile.write(data)


def closed_port_url() -> str:
    """An http://127.0.0.1 URL where nothing listens (for 'server down')."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
