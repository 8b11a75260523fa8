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
