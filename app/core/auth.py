"""API keys per tenant, sent as bearer tokens and stored only as SHA-256 hashes.

A key reads ``tj_<key id>_<secret>``: the id finds the record, the secret is compared in
constant time with the stored hash. Keys are created, listed and revoked with ``tabjob admin``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from typing import Any

import redis

from app.core.errors import Unauthorized, UserError

TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
LOCAL_TENANT = "local"
_KEY_PATTERN = re.compile(r"^tj_([a-f0-9]{12})_([A-Za-z0-9_-]{20,})$")
# A revocation is remembered at least as long as any URL signed for the key can live (7 days).
REVOCATION_MEMORY_S = 8 * 24 * 3600


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_tenant(tenant: str) -> str:
    if not TENANT_PATTERN.match(tenant):
        raise UserError(
            f"'{tenant}' is not a valid tenant name.",
            code="tenant.invalid",
            hint="Use lower-case letters, digits and dashes, starting with a letter or digit.",
        )
    return tenant


class ApiKeys:
    """The API key registry in Valkey.

    Parameters:
      client: a redis client with ``decode_responses=True``.
    """

    def __init__(self, *, client: redis.Redis, prefix: str = "tabjob") -> None:
        self.r = client
        self.p = prefix

    def _key(self, key_id: str) -> str:
        return f"{self.p}:apikey:{key_id}"

    def create(self, tenant: str, name: str = "", *, admin: bool = False) -> tuple[str, dict[str, Any]]:
        """A new key for ``tenant``: the token (shown once) and its public record. An admin key
        also sees every tenant's jobs on the dashboard and in ``tabjob top`` (read-only)."""
        check_tenant(tenant)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        record = {"id": key_id, "tenant": tenant, "name": name, "created_at": str(time.time()), "admin": str(admin)}
        pipe = self.r.pipeline()
        pipe.hset(self._key(key_id), mapping={**record, "hash": _hash(secret)})
        pipe.sadd(f"{self.p}:apikeys", key_id)
        pipe.execute()
        return f"tj_{key_id}_{secret}", record

    def seed(self, tenant: str, token: str, name: str = "bootstrap") -> dict[str, Any]:
        """Store a key the deployment generated (e.g. the smoke test's), hashed like any other.

        Idempotent: seeding the same token again rewrites the same record, so every API
        replica may seed at start-up. Raises UserError for a malformed token or tenant.
        """
        check_tenant(tenant)
        match = _KEY_PATTERN.match(token)
        if match is None:
            raise UserError(
                f"The bootstrap API key for tenant '{tenant}' is malformed.",
                code="apikey.malformed",
                hint="A key reads tj_<12 hex digits>_<20 or more of A-Z a-z 0-9 _ ->.",
            )
        key_id, secret = match.groups()
        record = {"id": key_id, "tenant": tenant, "name": name, "created_at": str(time.time())}
        pipe = self.r.pipeline()
        pipe.hset(self._key(key_id), mapping={**record, "hash": _hash(secret)})
        pipe.sadd(f"{self.p}:apikeys", key_id)
        pipe.execute()
        return record

    def list(self, tenant: str | None = None) -> list[dict[str, Any]]:
        out = []
        for key_id in sorted(self.r.smembers(f"{self.p}:apikeys")):
            record = self.r.hgetall(self._key(key_id))
            if record and (tenant is None or record["tenant"] == tenant):
                record.pop("hash", None)
                out.append(record)
        return out

    def revoke(self, key_id: str) -> bool:
        pipe = self.r.pipeline()
        pipe.delete(self._key(key_id))
        pipe.srem(f"{self.p}:apikeys", key_id)
        deleted, _ = pipe.execute()
        if deleted:
            # Upload URLs signed for its datasets outlive the key: submission checks this.
            self.r.set(f"{self.p}:apikey-revoked:{key_id}", str(time.time()), ex=REVOCATION_MEMORY_S)
        return bool(deleted)

    def revoked_at(self, key_id: str) -> float | None:
        """When ``key_id`` was revoked (Unix seconds), or None (live, or revoked long ago)."""
        found = self.r.get(f"{self.p}:apikey-revoked:{key_id}")
        return float(found) if found else None

    @staticmethod
    def key_id_of(token: str) -> str | None:
        """The key id part of a well-formed token (not a check that the key exists)."""
        match = _KEY_PATTERN.match(token)
        return match.group(1) if match else None

    def tenant_of(self, token: str) -> str:
        """The tenant a bearer token belongs to, or Unauthorized."""
        return self._record_of(token)["tenant"]

    def caller_of(self, token: str) -> tuple[str, bool]:
        """The tenant a bearer token belongs to and whether it is an admin key, or Unauthorized."""
        record = self._record_of(token)
        return record["tenant"], record.get("admin") == "True"

    def _record_of(self, token: str) -> dict[str, str]:
        match = _KEY_PATTERN.match(token)
        if match is None:
            raise Unauthorized("The API key is malformed.", hint="Send 'Authorization: Bearer tj_…'.")
        key_id, secret = match.groups()
        record = self.r.hgetall(self._key(key_id))
        if not record or not hmac.compare_digest(record.get("hash", ""), _hash(secret)):
            raise Unauthorized(
                "The API key is unknown or revoked.",
                hint="Ask an operator for a key (tabjob admin create-key --tenant NAME).",
            )
        return record


def seed_bootstrap_keys(keys: ApiKeys, spec: str) -> list[str]:
    """Seed every ``tenant=token`` pair of ``spec`` (comma-separated); return the tenants.

    The deployment passes these (``TABJOB_BOOTSTRAP_API_KEYS``) so that a key exists before
    anyone could run ``tabjob admin create-key`` inside the cluster: the smoke test's key.
    """
    tenants = []
    for pair in filter(None, (part.strip() for part in spec.split(","))):
        tenant, sep, token = pair.partition("=")
        if not sep:
            raise UserError(
                "TABJOB_BOOTSTRAP_API_KEYS must list tenant=token pairs.",
                code="apikey.malformed",
                hint="For example: smoke=tj_0123456789ab_<secret>.",
            )
        keys.seed(tenant.strip(), token.strip())
        tenants.append(tenant.strip())
    return tenants
