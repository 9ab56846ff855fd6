"""Sealing MiMo's reasoning_content into a Responses `encrypted_content` blob.

AES-GCM with a key from the middleware's configuration, versioned by prefix and bound
to the upstream through the associated data: the client can neither read nor forge it,
a blob from real OpenAI (no prefix) is recognised as foreign, and a tampered or
rotated-out blob opens to None rather than reaching MiMo.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "mimo1:"
_AAD = b"mimo_asgi reasoning v1|"


def _key(material: bytes | str) -> bytes:
    raw = material.encode() if isinstance(material, str) else material
    return hashlib.sha256(b"mimo_asgi seal key|" + raw).digest()


class ReasoningSealer:
    """seal(text) -> blob; unseal(blob) -> text, or None when foreign, tampered or unknown key.

    The first key seals; every key opens (key rotation).
    """

    __slots__ = ("_aeads", "_aad")

    def __init__(self, keys: Sequence[bytes | str] | bytes | str, *, binding: str = "xiaomimimo") -> None:
        if isinstance(keys, (bytes, str)):
            keys = [keys]
        if not keys:
            raise ValueError("ReasoningSealer needs at least one key")
        self._aeads = [AESGCM(_key(k)) for k in keys]
        self._aad = _AAD + binding.encode()

    @classmethod
    def random(cls, *, binding: str = "xiaomimimo") -> ReasoningSealer:
        return cls(os.urandom(32), binding=binding)

    @staticmethod
    def is_ours(blob: object) -> bool:
        return isinstance(blob, str) and blob.startswith(PREFIX)

    def seal(self, text: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aeads[0].encrypt(nonce, text.encode(), self._aad)
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def unseal(self, blob: object) -> str | None:
        if not self.is_ours(blob):
            return None
        try:
            raw = base64.urlsafe_b64decode(blob[len(PREFIX):])  # type: ignore[index]
        except (ValueError, TypeError):
            return None
        if len(raw) < 12 + 16:
            return None
        for aead in self._aeads:
            try:
                return aead.decrypt(raw[:12], raw[12:], self._aad).decode()
            except (InvalidTag, UnicodeDecodeError):
                continue
        return None
