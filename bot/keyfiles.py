"""Keys generated once into the data directory (the vault key, the service secret), whole or not at all."""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable


def key_file(path: Path, generate: Callable[[], bytes]) -> bytes:
    """The key kept in `path`, generated on first use (mode 600).

    The key is written to a temp file, fsync'ed, then linked into place: a process killed mid-way
    leaves no empty key file behind (the service could never start again), and two processes
    starting together end up with the same key. An empty file, as earlier versions could leave after
    such a kill, counts as absent: nothing can have been encrypted or signed with a key never written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        try:
            kept = path.read_bytes().strip()
        except FileNotFoundError:
            kept = b""
        if kept:
            return kept
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(generate())
            fh.flush()
            os.fsync(fh.fileno())
        try:
            if path.exists():
                os.replace(tmp, path)  # the empty leftover of a kill
            else:
                os.link(tmp, path)  # fails if another process got there first: theirs is read next
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)
    raise OSError(f"cannot create the key file {path}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
