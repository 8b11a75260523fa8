"""Who the letters speak for and point to: the controller (shop, DPO) and the supervisory authority."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.config import Config
from integrations.base import Misconfigured

AUTHORITIES_FILE = Path(__file__).parent / "authorities.yaml"


@lru_cache(maxsize=1)
def _authorities() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(AUTHORITIES_FILE.read_text(encoding="utf-8"))


def known_authorities() -> list[str]:
    return sorted(_authorities())


def authority(code: str, language: str) -> dict[str, Any]:
    """The authority's details in `language` (English when the file has no such translation)."""
    entry = _authorities().get(code.upper())
    if entry is None:
        raise Misconfigured(f"[jurisdiction] authority {code!r} is not described in {AUTHORITIES_FILE.name}; "
                            f"known: {', '.join(known_authorities())} (add it to that file)")
    names = entry["name"]
    return {"code": code.upper(), "name": names.get(language) or names["en"], "address": list(entry["address"]),
            "phone": entry.get("phone", ""), "website": entry.get("website", ""),
            "complaint_url": entry.get("complaint_url", "")}


def controller(config: Config) -> dict[str, Any]:
    """The shop as it signs its letters."""
    service = config.service
    lines = [line.strip() for line in service.postal_address.replace("\r", "").split("\n") if line.strip()]
    return {"name": service.shop_name, "postal_address": lines, "dpo_name": service.dpo_name,
            "dpo_email": service.dpo_email or service.privacy_address}
