"""Shared fixtures: an injected clock and a service on a temporary data dir.

Desk fixtures (a seeded service, logged-in clients) live in conftest_desk, the browser in
conftest_browser.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

from bot.config import Config, load_config
from bot.service import Service, build_service

pytest_plugins = ["tests.conftest_desk", "tests.conftest_browser"]


class FakeClock:
    """The only time tests know: it moves when the test says so."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc))


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(None, environ={}, overrides={"service": {"data_dir": str(tmp_path / "data")}})


@pytest.fixture
def service(config: Config, clock: FakeClock) -> Iterator[Service]:
    svc = build_service(config, now=clock)
    yield svc
    svc.close()
