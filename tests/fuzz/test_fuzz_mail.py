"""Generated hostile mail through the mailbox path and intake: each ends as one record, never a crash."""
from __future__ import annotations

from hypothesis import given

from tests.fuzz.mailgen import hostile_mail
from tests.fuzz.targets import MailTarget


def test_hostile_mail_always_ends_as_one_record(tmp_path_factory):
    target = MailTarget(tmp_path_factory.mktemp("fuzz-mail"))

    @given(hostile_mail())
    def feed(raw: bytes) -> None:
        target.feed(raw)

    try:
        feed()
    finally:
        target.close()
    print(f"mail: {target.tried} inputs, outcomes {dict(target.outcomes)}")
    assert target.tried >= 50 and sum(target.outcomes.values()) == target.tried
    assert target.outcomes["case_opened"] and any(k.startswith("ignored") for k in target.outcomes)
