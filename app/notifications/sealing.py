"""Endpoint secrets sealed at rest with Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from `STRATUM_SECRET_KEY` (any passphrase; it is stretched with SHA-256),
so a dump of the database alone does not reveal any endpoint's signing secret. Without
it, a random key is created once under the data directory (`secret.key`, mode 0600):
fine for one machine, but processes on several machines must share STRATUM_SECRET_KEY.
"""

from __future__ import annotations

import base64
import hashlib
import os
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet

from app.core.settings import Settings

KEY_FILE = "secret.key"


def _key_file(data_dir: Path) -> bytes:
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        try:
            # O_EXCL: when processes race, the first key written wins and all read it.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as file:
                file.write(key)
    return path.read_bytes().strip()


@lru_cache(maxsize=4)
def _fernet(passphrase: str | None, data_dir: Path) -> Fernet:
    if passphrase:
        digest = hashlib.sha256(passphrase.encode()).digest()
        return Fernet(base64.urlsafe_b64encode(digest))
    return Fernet(_key_file(data_dir))


def sealer(settings: Settings) -> Fernet:
    passphrase = settings.secret_key.get_secret_value() if settings.secret_key else None
    return _fernet(passphrase, settings.data_dir)


def seal(settings: Settings, secret: str) -> bytes:
    return sealer(settings).encrypt(secret.encode())


def unseal(settings: Settings, sealed: bytes) -> str:
    return sealer(settings).decrypt(sealed).decode()
