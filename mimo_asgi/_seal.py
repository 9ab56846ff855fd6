"""Sealing gateway-held text into a Responses `encrypted_content` blob: MiMo's
reasoning_content, and compaction summaries.

AES-GCM with a key from the middleware's configuration, versioned by prefix and bound
to the upstream and to a purpose through the associated data: the client can neither read
nor forge it, a blob from real OpenAI (no prefix) is recognised as foreign, a tampered or
rotated-out blob opens to None rather than reaching MiMo, and a blob sealed for one purpose
(a reasoning item) never opens for another (a compaction item).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "mimo1:"
REASONING = "reasoning"
COMPACTION = "compaction"
_PURPOSE = re.compile(r"[a-z][a-z0-9_]*")  # no space or "|": the associated data parses one way


def _key(material: bytes | str) -> bytes:
    raw = material.encode() if isinstance(material, str) else material
    return hashlib.sha256(b"mimo_asgi seal key|" + raw).digest()


def _aad(purpose: str, binding: str) -> bytes:
    """`mimo_asgi <purpose> v1|<binding>`; for reasoning, what every earlier blob was sealed with."""
    if not _PURPOSE.fullmatch(purpose):
        raise ValueError(f"a seal purpose is a lowercase word, got {purpose!r}")
    return f"mimo_asgi {purpose} v1|".encode() + binding.encode()


class ReasoningSealer:
    """seal(text) -> blob; unseal(blob) -> text, or None when foreign, tampered, unknown key
    or sealed for another purpose.

    The first key seals; every key opens (key rotation). `for_purpose` gives a sealer with
    the same keys for another kind of blob.
    """

    __slots__ = ("_aeads", "_aad", "_binding", "purpose")

    def __init__(self, keys: Sequence[bytes | str] | bytes | str, *, binding: str = "xiaomimimo",
                 purpose: str = REASONING) -> None:
        if isinstance(keys, (bytes, str)):
            keys = [keys]
        if not keys:
            raise ValueError("ReasoningSealer needs at least one key")
        self._aeads = [AESGCM(_key(k)) for k in keys]
        self._aad = _aad(purpose, binding)
        self._binding = binding
        self.purpose = purpose

    @classmethod
    def random(cls, *, binding: str = "xiaomimimo") -> ReasoningSealer:
        return cls(os.urandom(32), binding=binding)

    def for_purpose(self, purpose: str) -> ReasoningSealer:
        """A sealer sharing these keys (and their rotation) whose blobs only it opens."""
        if purpose == self.purpose:
            return self
        derived = object.__new__(ReasoningSealer)
        derived._aeads = self._aeads
        derived._aad = _aad(purpose, self._binding)
        derived._binding = self._binding
        derived.purpose = purpose
        return derived

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
