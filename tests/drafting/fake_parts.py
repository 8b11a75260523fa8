"""A test integration standing in for bot.gathering and bot.register (another branch builds them): it
registers a gatherer that returns the demo customer's records and the demo register."""
from __future__ import annotations

from typing import Any

from tests.drafting import demo_customer as demo


class FakeGatherer:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def gather(self, query: Any, rights: list[str]) -> demo.GatherResult:
        self.calls.append(query)
        if demo.EMAIL not in query.emails:
            return demo.GatherResult([], {"shop_db": {"status": "ok", "error": "", "count": 0}})
        return demo.GatherResult(demo.records(), {"shop_db": {"status": "ok", "error": "", "count": 19},
                                                  "brevo": {"status": "ok", "error": "", "count": 1}})


def setup(service: Any) -> None:
    service.components["gatherer"] = FakeGatherer()
    service.components["register"] = demo.DemoRegister(demo.ENTRIES)
