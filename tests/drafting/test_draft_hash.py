"""Approval binds the exact draft: the hash covers every file; verify_draft_files catches any change."""
from __future__ import annotations

import copy
import hashlib

import pytest

from bot.drafting import read_verified, verify_draft_files
from bot.drafting.files import draft_hash
from bot.vault import VaultError
from tests.drafting.conftest import drafter, gather_result, make_service, verified_case


@pytest.fixture(scope="module")
def drafted_once(tmp_path_factory):
    service = make_service(tmp_path_factory.mktemp("hash"))
    case = verified_case(service, "en")
    d = drafter(service)
    return d, d.draft(case, gather_result()), case


@pytest.fixture
def drafted(drafted_once):
    """The module's draft; whatever a test tampers with is put back afterwards."""
    d, draft, _ = drafted_once
    saved = {f["vault_path"]: (d.vault.root / f["vault_path"]).read_bytes() for f in draft["files"]}
    yield drafted_once
    for path, data in saved.items():
        (d.vault.root / path).write_bytes(data)
    assert verify_draft_files(d.vault, draft)


def test_hash_covers_every_file_and_the_files_verify(drafted):
    d, draft, _ = drafted
    assert {f["role"] for f in draft["files"]} == {"letter_html", "letter_text", "pdf", "html", "json", "csv"}
    assert draft["hash"] == draft_hash((f["name"], f["size"], f["sha256"]) for f in draft["files"])
    assert verify_draft_files(d.vault, draft)
    assert set(read_verified(d.vault, draft)) == {f["name"] for f in draft["files"]}


@pytest.mark.parametrize("role", ["letter_html", "letter_text", "pdf", "html", "json", "csv"])
def test_a_changed_file_changes_the_hash_and_fails_verification(drafted, role):
    d, draft, _ = drafted
    entry = next(f for f in draft["files"] if f["role"] == role)
    original = d.vault.read(entry["vault_path"])
    d.vault.write(entry["vault_path"], original[:-1] + bytes([original[-1] ^ 1]))  # one bit, re-encrypted validly
    assert not verify_draft_files(d.vault, draft)
    with pytest.raises(VaultError):
        read_verified(d.vault, draft)
    changed = copy.deepcopy(draft)
    for f in changed["files"]:
        if f["name"] == entry["name"]:
            f["sha256"] = hashlib.sha256(d.vault.read(entry["vault_path"])).hexdigest()
    assert draft_hash((f["name"], f["size"], f["sha256"]) for f in changed["files"]) != draft["hash"]
    assert not verify_draft_files(d.vault, changed), "rewriting a file's checksum does not rebind the approval"


def test_tampered_ciphertext_missing_or_swapped_files_fail(drafted):
    d, draft, _ = drafted
    pdf = next(f for f in draft["files"] if f["role"] == "pdf")
    json_ = next(f for f in draft["files"] if f["role"] == "json")
    path = d.vault.root / pdf["vault_path"]
    saved = path.read_bytes()
    path.write_bytes(saved[:-4] + b"AAAA")
    assert not verify_draft_files(d.vault, draft)
    path.write_bytes(saved)
    assert verify_draft_files(d.vault, draft)
    swapped = copy.deepcopy(draft)
    for f in swapped["files"]:
        if f["role"] == "pdf":
            f["vault_path"] = json_["vault_path"]
    assert not verify_draft_files(d.vault, swapped)
    fewer = copy.deepcopy(draft)
    fewer["files"] = [f for f in fewer["files"] if f["role"] != "csv"]
    assert not verify_draft_files(d.vault, fewer)
    d.vault.delete(pdf["vault_path"])
    assert not verify_draft_files(d.vault, draft)
    assert not verify_draft_files(d.vault, {"hash": draft["hash"], "files": []})


def test_same_inputs_give_the_same_hash_and_other_data_another(tmp_path):
    service = make_service(tmp_path)
    case = verified_case(service, "fr")
    d = drafter(service)
    first, again = d.draft(case, gather_result()), d.draft(case, gather_result())
    assert first["hash"] == again["hash"], "drafting is deterministic: an unchanged case keeps its approval"
    other = d.draft(case, gather_result(extra=True))
    assert other["hash"] != first["hash"]
    assert other["files"][0]["vault_path"].split("/")[2] == other["hash"][:16]
    assert verify_draft_files(d.vault, first) and verify_draft_files(d.vault, other)


def test_approval_records_the_hash_and_delivery_needs_the_same_draft(tmp_path):
    service = make_service(tmp_path)
    case = verified_case(service, "en")
    service.cases.transition(case.id, "start_gathering", "system")
    draft = drafter(service).draft(case, gather_result())
    service.cases.transition(case.id, "gathered", "system", mutate=lambda c: setattr(c, "draft", draft))
    approved = service.cases.transition(case.id, "approve", "agent:alice", detail={"draft_hash": draft["hash"]})
    assert approved.approval["draft_hash"] == draft["hash"]
    assert verify_draft_files(drafter(service).vault, approved.draft)
