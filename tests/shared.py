"""Where the shared test material lives (corpus, legal cases, shop schemas): never copied here."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """`$DSARBOT_SHARED`, else `../shared` beside the checkout, else `/work/shared`."""
    candidates = [os.environ.get("DSARBOT_SHARED", ""), str(REPO.parent / "shared"), "/work/shared"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "DESIGN.md").exists():
            return Path(candidate)
    raise FileNotFoundError("shared test material not found: set DSARBOT_SHARED to the shared/ folder")
