"""Attachments at rest: encrypted, named by us, bounded in size and number, replay-stable."""
from __future__ import annotations

from bot.attachments import Limits, content_key, store_attachments, store_original
from bot.vault import Vault


def test_limits_list_what_they_do_not_keep(tmp_path):
    vault = Vault(tmp_path)
    files = [("a.txt", "text/plain", b"a" * 10), ("big.bin", "application/octet-stream", b"b" * 101),
             ("c.txt", "text/plain", b"c"), ("d.txt", "text/plain", b"d")]
    refs = store_attachments(vault, "k", files, Limits(max_bytes=100, max_count=2))
    assert [bool(r.path) for r in refs] == [True, False, True, False]
    assert [r.size for r in refs] == [10, 101, 1, 1]
    assert vault.read(refs[0].path) == b"a" * 10


def test_same_bytes_same_paths_and_hostile_names_stay_inside(tmp_path):
    vault = Vault(tmp_path)
    files = [("../../../etc/passwd", "text/plain", b"x"), ("", "", b"y"), ("C:\\evil\\..\\x.exe", "", b"z")]
    first = store_attachments(vault, content_key(b"raw"), files)
    again = store_attachments(vault, content_key(b"raw"), files)
    assert [a.path for a in first] == [a.path for a in again]
    assert all(a.path.startswith(f"attachments/{content_key(b'raw')}/") and ".." not in a.path for a in first)
    assert len(vault.list("attachments")) == 3
    original = store_original(vault, "k2", b"raw mail")
    assert vault.read(original.path) == b"raw mail" and original.content_type == "message/rfc822"


def test_the_vault_key_can_live_outside_the_data_dir(tmp_path):
    from cryptography.fernet import Fernet

    from bot.config import load_config
    from bot.service import build_service
    from bot.vault import vault_of

    key = Fernet.generate_key().decode()
    config = load_config(None, environ={"DSARBOT_SERVICE__VAULT_KEY": key},
                         overrides={"service": {"data_dir": str(tmp_path / "data")}})
    service = build_service(config, integrations=[])
    try:
        vault_of(service).write("a/b.bin", b"personal data")
        assert not (tmp_path / "data" / "vault.key").exists()
        assert Vault(tmp_path / "data", key).read("a/b.bin") == b"personal data"
        assert b"personal data" not in (tmp_path / "data" / "vault" / "a" / "b.bin").read_bytes()
    finally:
        service.close()
