"""Request dependencies: the shared services and the caller's tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from app.auth import LOCAL_TENANT
from app.errors import Unauthorized
from app.services import Services


async def get_services(request: Request) -> Services:
    # async: no I/O here, and a sync dependency would cost a thread-pool hop per request.
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_tenant(request: Request, svc: ServicesDep) -> str:
    """The tenant of the bearer token; the local tenant when auth is off (loopback only)."""
    # async, so the common no-I/O path costs no thread-pool hop; the key lookup (Redis) runs
    # in the pool.
    if not svc.settings.auth_enabled:
        return LOCAL_TENANT
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "This API needs an API key.",
            hint="Send 'Authorization: Bearer <key>' (the CLI reads TABJOB_API_KEY).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    tenant = await run_in_threadpool(svc.keys.tenant_of, token.strip())
    # Datasets remember the key that got their upload URL (a revoked key's URLs are refused).
    request.state.api_key_id = svc.keys.key_id_of(token.strip())
    return tenant


TenantDep = Annotated[str, Depends(current_tenant)]
