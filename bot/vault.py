"""Files with personal data at rest (identity proofs, gathered records, exports): encrypted.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with the key `[service] vault_key` (from the
environment: `DSARBOT_SERVICE__VAULT_KEY`) or, when none is set, one generated once into the data directory.
The encrypted files live in `<data_dir>/vault/`, or, with a PostgreSQL store, in the database
(`bot.store.postgres_store.PostgresBlobs`) so that every instance reads what any other wrote; the
instances must then share the key. File names inside the vault are ours, never the sender's:
`safe_name` keeps a sender's file name out of every path.
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import re
import secrets
import unicodedata
from pathlib import Path
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken

from bot.keyfiles import key_file

KEY_FILE = "vault.key"


class VaultError(RuntimeError):
    pass


def safe_name(name: str, default: str = "file", max_length: int = 80) -> str:
    """A file name safe on every file system and in every path: no separators, no dots first."""
    normal = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode("ascii")
    normal = re.sub(r"[^A-Za-z0-9._-]+", "_", normal).strip("._-")
    normal = re.sub(r"\.{2,}", ".", normal)
    return (normal or default)[:max_length]


class Blobs(Protocol):
    """Where the vault keeps its encrypted bytes, by clean relative path ("a/b.pdf")."""

    def write(self, path: str, data: bytes) -> None: ...

    def read(self, path: str) -> bytes:
        """Raises FileNotFoundError when there is nothing at `path`."""

    def exists(self, path: str) -> bool: ...

    def delete(self, path: str) -> None:
        """The file, or everything under the folder `path`."""

    def list(self, folder: str) -> list[str]:
        """Paths of the files under `folder`, sorted."""


class FileBlobs:
    """Files under one directory, written atomically (temp file, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if self.root.resolve() not in path.parents:  # a symbolic link pointing out
            raise VaultError(f"path {relative!r} leaves the vault")
        return path

    def write(self, path: str, data: bytes) -> None:
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def read(self, path: str) -> bytes:
        return self._path(path).read_bytes()

    def exists(self, path: str) -> bool:
        return self._path(path).exists()

    def delete(self, path: str) -> None:
        target = self._path(path)
        if target.is_dir():
            for child in sorted(target.rglob("*"), reverse=True):
                child.unlink() if child.is_file() else child.rmdir()
            target.rmdir()
        elif target.exists():
            target.unlink()

    def list(self, folder: str) -> list[str]:
        target = self._path(folder)
        if not target.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in target.rglob("*")
                      if p.is_file() and not p.name.startswith("."))


class Vault:
    """Encrypts files into its blobs (default: `<data_dir>/vault/`). Paths are relative to the vault."""

    def __init__(self, data_dir: str | Path, key: str = "", blobs: Blobs | None = None) -> None:
        self.blobs: Blobs = blobs or FileBlobs(Path(data_dir) / "vault")
        try:
            raw = key.encode() if key else self._key_from_dir(Path(data_dir))
            self._fernet = Fernet(raw)
        except ValueError as exc:
            raise VaultError("[service] vault_key is not a Fernet key (32 url-safe base64-encoded bytes): make one with "
                             "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
                             ) from exc
        self.key_id = hashlib.sha256(b"dsarbot vault key id\x00" + raw).hexdigest()  # names the key, reveals nothing

    @property
    def root(self) -> Path:
        """The directory of a file vault (tests, and tools that look at the files)."""
        if not isinstance(self.blobs, FileBlobs):
            raise VaultError("this vault is kept in the database, not in a directory")
        return self.blobs.root

    @staticmethod
    def _key_from_dir(data_dir: Path) -> bytes:
        return key_file(data_dir / KEY_FILE, Fernet.generate_key)

    @staticmethod
    def _clean(relative: str) -> str:
        path = posixpath.normpath(str(relative).replace("\\", "/"))
        if path.startswith(("/", "..")) or path == ".":
            raise VaultError(f"path {relative!r} leaves the vault")
        return path

    def write(self, relative: str, data: bytes) -> str:
        path = self._clean(relative)
        self.blobs.write(path, self._fernet.encrypt(data))
        return path

    def read(self, relative: str) -> bytes:
        try:
            return self._fernet.decrypt(self.blobs.read(self._clean(relative)))
        except InvalidToken as exc:
            raise VaultError(f"{relative}: cannot decrypt (wrong key or tampered file)") from exc

    def exists(self, relative: str) -> bool:
        return self.blobs.exists(self._clean(relative))

    def delete(self, relative: str) -> None:
        """Delete a file or a whole folder (purging expired exports, deleting a checked ID)."""
        self.blobs.delete(self._clean(relative))

    def list(self, relative: str) -> list[str]:
        return self.blobs.list(self._clean(relative))


def vault_of(service) -> Vault:
    """The service's one vault (`service.components["vault"]`, set up by `bot.service.build_service`),
    with the key from `[service] vault_key` (environment: DSARBOT_SERVICE__VAULT_KEY) or else
    `<data_dir>/vault.key`."""
    return service.shared("vault", lambda: Vault(service.data_dir, service.config.service.vault_key))
