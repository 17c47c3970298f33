"""``Idempotency-Key`` on ``POST /v1/jobs``: a retry returns the job the first request made, and
the key is bound to that request's body, so reusing it for another request is refused (422)
instead of silently returning a job the caller did not ask for.

The claim in Valkey reads ``<holder>#<digest>``: the holder is ``pending:<job id>`` while the
first request runs, then the job id; the digest is a hash of what the request asked for.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.core.domain import Job
from app.core.errors import Conflict, UserError
from app.usecases.services import Services


def request_digest(request: dict[str, Any]) -> str:
    """A hash of everything a validated submission asks for: each field of the request (kind,
    dataset, model, parameters, lane, target, model family, webhook URL and secret), so reusing
    a key with any other value is refused. ``lane`` None and ``auto`` are the same request; the
    webhook secret enters as its own hash, so the claim never holds it."""
    material = dict(request)
    material["lane"] = material.get("lane") or "auto"
    if material.get("webhook_secret"):
        material["webhook_secret"] = hashlib.sha256(str(material["webhook_secret"]).encode()).hexdigest()
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:32]


def claim_key(tenant: str, idempotency_key: str) -> str:
    return f"idem:{tenant}:{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}"


def claim(svc: Services, idem: str, digest: str, job_id: str) -> Job | None:
    """Claim an Idempotency-Key for this request, or return the job an earlier request made.

    Raises:
      UserError: 422 when the key was used for a request with another body.
      Conflict: 409 (Retry-After) while an earlier request with the key is still running.
    """
    mine = f"pending:{job_id}#{digest}"

    def stale(held: str) -> bool:  # a holder whose job has expired: this request takes the key
        holder = held.partition("#")[0]
        return not holder.startswith("pending:") and svc.state.jobs.get(holder) is None

    found = svc.state.claims.claim(idem, mine, svc.settings.idempotency_ttl_s, stale=stale)
    if found == mine:
        return None
    holder, _, earlier_digest = found.partition("#")
    if earlier_digest and earlier_digest != digest:  # claims written before digests carry none
        raise UserError(
            "This Idempotency-Key was already used for a different request.",
            code="job.idempotency_key_reused",
            hint="Use a new key for each distinct submission; reuse a key only to retry the same request.",
            status=422,
        )
    if holder.startswith("pending:"):
        raise Conflict(
            "A request with this Idempotency-Key is still being processed.",
            code="job.idempotency_in_progress",
            hint="Retry in a moment: it returns the same job.",
            headers={"Retry-After": "1"},
        )
    return svc.state.jobs.get(holder)


def settle(svc: Services, idem: str, digest: str, job_id: str) -> None:
    """Point the claim at the job the request made (or returned)."""
    svc.state.claims.assign(idem, f"{job_id}#{digest}", svc.settings.idempotency_ttl_s)
