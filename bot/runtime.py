"""Running the service: build it, check its connections, start the scheduler, serve HTTP."""
from __future__ import annotations

import logging
import signal
import threading

from bot.config import Config
from bot.scheduler import start_scheduler
from bot.service import Service, build_service

log = logging.getLogger(__name__)


def start_background(service: Service) -> list[str]:
    """Everything but HTTP: startup checks, the scheduler and long-running listeners (IMAP IDLE).
    Returns the startup checks' problems (logged; the service runs anyway and retries)."""
    problems = service.run_startup_checks()
    start_scheduler(service)
    for starter in service.components.get("background", []):
        starter()
    return problems


def serve_app(service: Service, host: str, port: int) -> None:
    from waitress import create_server

    from bot.web.app import create_app

    app = create_app(service)
    server = create_server(app, host=host, port=port, threads=8, ident="dsarbot")
    stop = threading.Event()

    def shutdown(*_: object) -> None:
        if not stop.is_set():
            stop.set()
            server.close()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    log.info("dsarbot listening on http://%s:%s", host, port)
    try:
        server.run()
    except (OSError, ValueError):
        if not stop.is_set():
            raise
    finally:
        scheduler = service.components.get("scheduler")
        if scheduler:
            scheduler.shutdown(wait=True)  # let a running job finish before its store is closed
        service.close()


def serve(config: Config) -> int:
    service = build_service(config)
    start_background(service)
    serve_app(service, config.service.host, config.service.port)
    return 0
