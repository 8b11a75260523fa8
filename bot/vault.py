"""Files with personal data at rest (identity proofs, gathered records, exports): encrypted.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with a key from the configuration or one
generated once into the data directory. File names inside the vault are ours, never the sender's:
`safe_name` keeps a sender's file name out of every path.
"""
from __future__ import annotations

import os
import re
import secrets
import unicodedata
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "vault.key"


class VaultError(RuntimeError):
    pass


def safe_name(name: str, default: str = "file", max_length: int = 80) -> str:
    """A file name safe on every file system and in every path: no separators, no dots first."""
    normal = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode("ascii")
    normal = re.sub(r"[^A-Za-z0-9._-]+", "_", normal).strip("._-")
    normal = re.sub(r"\.{2,}", ".", normal)
    return (normal or default)[:max_length]


class Vault:
    """Encrypts files under `<data_dir>/vault/`. Paths given to it are relative to that folder."""

    def __init__(self, data_dir: str | Path, key: str = "") -> None:
        self.root = Path(data_dir) / "vault"
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fernet = Fernet(key.encode() if key else self._key_from_dir(Path(data_dir)))

    @staticmethod
    def _key_from_dir(data_dir: Path) -> bytes:
        path = data_dir / KEY_FILE
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        return path.read_bytes().strip()

    def _path(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if self.root.resolve() not in path.parents:
            raise VaultError(f"path {relative!r} leaves the vault")
        return path

    def write(self, relative: str, data: bytes) -> Path:
        path = self._path(relative)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(self._fernet.encrypt(data))
        os.replace(tmp, path)
        return path

    def read(self, relative: str) -> bytes:
        try:
            return self._fernet.decrypt(self._path(relative).read_bytes())
        except InvalidToken as exc:
            raise VaultError(f"{relative}: cannot decrypt (wrong key or tampered file)") from exc

    def exists(self, relative: str) -> bool:
        return self._path(relative).exists()

    def delete(self, relative: str) -> None:
        """Delete a file or a whole folder (purging expired exports, deleting a checked ID)."""
        path = self._path(relative)
        if path.is_dir():
            for child in sorted(path.rglob("*"), reverse=True):
                child.unlink() if child.is_file() else child.rmdir()
            path.rmdir()
        elif path.exists():
            path.unlink()

    def list(self, relative: str) -> list[str]:
        path = self._path(relative)
        if not path.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def vault_of(service) -> Vault:
    """The service's one vault (`service.components["vault"]`), created on first use, with the key
    from `[service] vault_key` (environment: DSARBOT_SERVICE__VAULT_KEY) or else `<data_dir>/vault.key`."""
    vault = service.components.get("vault")
    if vault is None:
        vault = service.components["vault"] = Vault(service.data_dir, service.config.service.vault_key)
    return vault
