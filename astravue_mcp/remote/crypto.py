"""The key ring that encrypts secrets at rest in the shared state (AES-256-GCM, keys by id).

``ASTRAVUE_STATE_KEYS`` lists keys newest first. New values are sealed with the newest key; a
value sealed with any listed key still opens, so keys rotate by prepending a new one and dropping
the oldest once every record has been rewritten (records are rewritten on each refresh). Each
sealed value names its key by a short id (a hash of the key, never the key) and is bound to the
record it belongs to (associated data), so a value copied to another user's record does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable

KEY_BYTES = 32
NONCE_BYTES = 12
KID_BYTES = 4
VERSION = b"\x01"
GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


class KeyRingError(ValueError):
    """A key is malformed; the message says which one (by position) and how to make a good one."""


class SealedValueError(Exception):
    """A sealed value does not open: unknown key (rotated out), tampered, or for another record."""


def decode_key(text: str, position: int) -> bytes:
    raw = text.strip()
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyRingError(
            f"key {position} is not {KEY_BYTES} random bytes in URL-safe base64; make one with {GENERATE}"
        )
    return key


class KeyRing:
    """AES-GCM keys, newest first; ``seal``/``open`` bytes bound to a record name."""

    def __init__(self, keys: Iterable[bytes]) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # deferred: only once a key ring is used

        self._keys = [(self._kid(k), AESGCM(k), k) for k in keys]
        if not self._keys:
            raise KeyRingError("the key ring is empty")
        self._by_kid = {kid: aead for kid, aead, _ in reversed(self._keys)}

    @classmethod
    def from_setting(cls, value: str) -> KeyRing:
        entries = [e for e in value.split(",") if e.strip()]
        if not entries:
            raise KeyRingError(f"no key given; make one with {GENERATE}")
        return cls(decode_key(e, i) for i, e in enumerate(entries, 1))

    @classmethod
    def ephemeral(cls) -> KeyRing:
        """A key that lives as long as this process (for ``memory://`` state, which dies with it)."""
        return cls([secrets.token_bytes(KEY_BYTES)])

    @staticmethod
    def _kid(key: bytes) -> bytes:
        return hashlib.sha256(b"astravue-mcp key id" + key).digest()[:KID_BYTES]

    def seal(self, plaintext: bytes, record: str) -> bytes:
        kid, aead, _ = self._keys[0]
        nonce = secrets.token_bytes(NONCE_BYTES)
        return VERSION + kid + nonce + aead.encrypt(nonce, plaintext, record.encode())

    def open(self, sealed: bytes, record: str) -> bytes:
        from cryptography.exceptions import InvalidTag  # deferred: cryptography only once a key ring is used

        head = 1 + KID_BYTES + NONCE_BYTES
        if len(sealed) <= head or sealed[:1] != VERSION:
            raise SealedValueError("not a sealed value")
        aead = self._by_kid.get(sealed[1 : 1 + KID_BYTES])
        if aead is None:
            raise SealedValueError("sealed with a key that is no longer in ASTRAVUE_STATE_KEYS")
        try:
            return aead.decrypt(sealed[1 + KID_BYTES : head], sealed[head:], record.encode())
        except InvalidTag:
            raise SealedValueError("tampered with, or not this record's value") from None

    def needs_reseal(self, sealed: bytes) -> bool:
        """True when the value was sealed with an older key (rewrite it to finish a rotation)."""
        return sealed[1 : 1 + KID_BYTES] != self._keys[0][0]

    def derive(self, purpose: str) -> bytes:
        """A key for another purpose, the same on every replica sharing this ring (newest key)."""
        return self.derived(purpose)[0]

    def derived(self, purpose: str) -> list[bytes]:
        """That purpose's key from every key in the ring, newest first (to open what older keys sealed)."""
        label = b"astravue-mcp derive:" + purpose.encode()
        return [hmac.new(key, label, hashlib.sha256).digest() for _, _, key in self._keys]
