"""Webhook secrets at rest: sealed in job records, so a read of Valkey or of a record does not
give them. Encrypt-then-MAC from the standard library: an HMAC-SHA256 keystream (a PRF in counter
mode) and an HMAC-SHA256 tag over nonce and ciphertext, with separate labels for each use."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from app.core.settings import Settings

SEALED_PREFIX = "sealed:v1:"


def sealing_key(settings: Settings) -> bytes:
    """The key that seals webhook secrets: ``webhook_sealing_key``, else derived from the S3
    secret key (which every API and worker process holds, and job processes do not)."""
    configured = settings.webhook_sealing_key
    material = configured.get_secret_value() if configured is not None else settings.s3_secret_key.get_secret_value()
    return hashlib.sha256(b"tabjob webhook sealing\0" + material.encode()).digest()


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (
        hmac.new(key, b"enc" + nonce + i.to_bytes(4, "big"), hashlib.sha256).digest() for i in range(length // 32 + 1)
    )
    return b"".join(blocks)[:length]


def seal_secret(key: bytes, secret: str) -> str:
    """``secret`` sealed for a job record."""
    nonce, plain = secrets.token_bytes(16), secret.encode()
    cipher = bytes(a ^ b for a, b in zip(plain, _keystream(key, nonce, len(plain)), strict=True))
    tag = hmac.new(key, b"mac" + nonce + cipher, hashlib.sha256).digest()[:16]
    return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + cipher + tag).decode()


def open_secret(key: bytes, sealed: str) -> str:
    """The secret ``seal_secret`` sealed; ValueError when it was not sealed with ``key`` or was changed."""
    raw = base64.urlsafe_b64decode(sealed.removeprefix(SEALED_PREFIX).encode())
    nonce, cipher, tag = raw[:16], raw[16:-16], raw[-16:]
    if not hmac.compare_digest(tag, hmac.new(key, b"mac" + nonce + cipher, hashlib.sha256).digest()[:16]):
        raise ValueError("the sealed webhook secret does not open with this key")
    return bytes(a ^ b for a, b in zip(cipher, _keystream(key, nonce, len(cipher)), strict=True)).decode()
