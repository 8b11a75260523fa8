"""AES-256 encrypted ZIP archives (WinZip AE-2, via pyzipper) for answers sent as an email attachment.

AE-2 is what 7-Zip, WinZip, macOS Archive Utility (recent) and most tools open; the legacy ZipCrypto
scheme is broken and never used. Member names are ours (`safe_name`), never a sender's.
"""
from __future__ import annotations

import io
import secrets

import pyzipper

from bot.vault import safe_name

# No 0/O, 1/l/I: the password is read off a screen and typed by hand.
_PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_password(groups: int = 4, size: int = 5) -> str:
    """About 115 bits of entropy, in groups easy to copy: `xK7pq-...`."""
    return "-".join("".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(size)) for _ in range(groups))


def encrypted_zip(files: dict[str, bytes], password: str) -> bytes:
    buffer = io.BytesIO()
    with pyzipper.AESZipFile(buffer, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as archive:
        archive.setpassword(password.encode("utf-8"))
        archive.setencryption(pyzipper.WZ_AES, nbits=256)
        for name, data in sorted(files.items()):
            archive.writestr(safe_name(name), data)
    return buffer.getvalue()


def plain_zip(files: dict[str, bytes]) -> bytes:
    """For the portal download (already behind TLS, a fresh code and a one-time grant)."""
    buffer = io.BytesIO()
    with pyzipper.ZipFile(buffer, "w", compression=pyzipper.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(safe_name(name), data)
    return buffer.getvalue()
