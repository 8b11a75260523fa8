"""The service's web app served by waitress on a free 127.0.0.1 port, in a thread, for browser tests.

    with running_web(service) as server:
        page.goto(server.url("/desk/"))

The service is built by the test (seeded store, injected clock); nothing here reads the real time.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from waitress import wasyncore
from waitress.server import create_server

from bot.service import Service
from bot.web.app import create_app


class WebServer:
    def __init__(self, service: Service, port: int = 0) -> None:
        self.service = service
        self.app = create_app(service)
        # port 0: the OS picks a free port (give one when the service's base_url must name it);
        # a short loop timeout makes close() quick.
        self._server = create_server(self.app, host="127.0.0.1", port=port, threads=4, ident="dsarbot-test",
                                     asyncore_loop_timeout=0.1)
        self.port = self._server.effective_port
        self._thread = threading.Thread(target=self._run, name=f"web-{self.port}", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self._server.run()
        except OSError:  # closing the listening socket ends run() with EBADF
            pass
        except BaseException as exc:  # noqa: BLE001 - surfaced to the test by stop()
            self.error = exc

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> "WebServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        # Closing the listener alone leaves keep-alive connections in the loop's map: close them all.
        self._server.close()
        wasyncore.close_all(self._server._map)
        self._thread.join(timeout=5)
        self._server.task_dispatcher.shutdown()
        if self._thread.is_alive():
            raise RuntimeError("the test web server did not stop")
        if self.error:
            raise self.error


@contextmanager
def running_web(service: Service, port: int = 0) -> Iterator[WebServer]:
    server = WebServer(service, port).start()
    try:
        yield server
    finally:
        server.stop()
