"""Real mail from the shared corpus, mutated (bit flips, truncations, header duplication, splices...), through
the mailbox path and intake: each mutant ends as one record, never a crash."""
from __future__ import annotations

from hypothesis import given

from tests.fuzz.mutate import corpus_files, mutate, mutations
from tests.fuzz.targets import MailTarget

CORPUS = corpus_files()


def test_the_corpus_has_mail_to_mutate():
    assert len(CORPUS) >= 50, "shared/corpus/*.eml not found or nearly empty (see tests/shared.py)"


def test_mutated_corpus_mail_always_ends_as_one_record(tmp_path_factory):
    target = MailTarget(tmp_path_factory.mktemp("fuzz-corpus"))

    @given(mutations(len(CORPUS)))
    def feed(choice: tuple[int, list[tuple]]) -> None:
        index, ops = choice
        target.feed(mutate(CORPUS[index], ops, CORPUS))

    try:
        feed()
    finally:
        target.close()
    print(f"corpus mutations: {target.tried} inputs, outcomes {dict(target.outcomes)}")
    assert sum(target.outcomes.values()) == target.tried >= 50
    assert target.outcomes["case_opened"] and any(k.startswith("ignored") for k in target.outcomes)
