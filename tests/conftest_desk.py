"""Fixtures for desk tests: a seeded service at a fixed time, and Flask test clients for agents."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from bot.web.app import create_app
from tests.desk_seed import PASSWORD, Seeded, seed

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def log_in(client: FlaskClient, login: str = "alice", password: str = PASSWORD, **environ: str):
    token = csrf_from(client.get("/desk/login").get_data(as_text=True))
    return client.post("/desk/login", data={"login": login, "password": password, "csrf_token": token},
                       environ_base=environ)


def page_token(client: FlaskClient, path: str = "/desk/") -> str:
    """The CSRF token of the logged-in session, as a page shows it."""
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return csrf_from(response.get_data(as_text=True))


@pytest.fixture
def seeded(tmp_path: Path) -> Seeded:
    data = seed(tmp_path / "data")
    yield data
    data.service.close()


@pytest.fixture
def app(seeded: Seeded):
    flask_app = create_app(seeded.service)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def agent(app) -> FlaskClient:
    """A client logged in as alice."""
    client = app.test_client()
    response = log_in(client)
    assert response.status_code == 303, response.get_data(as_text=True)
    return client
