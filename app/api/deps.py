"""Request dependencies: the shared services and the caller's tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from app.core import logging_setup
from app.core.auth import LOCAL_TENANT
from app.core.errors import Unauthorized
from app.observability.overview import Viewer
from app.usecases.services import Services


async def get_services(request: Request) -> Services:
    # async: no I/O here, and a sync dependency would cost a thread-pool hop per request.
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


# Declares the bearer scheme in the OpenAPI document (the Authorize button of /docs); checking
# the token stays ours (auto_error=False), so a missing or malformed key gets the API's envelope.
bearer = HTTPBearer(
    scheme_name="ApiKey",
    bearerFormat="tj_<key id>_<secret>",
    description="An API key from `tabjob admin create-key`, sent as `Authorization: Bearer <key>`. "
    "A local stack with auth off needs none.",
    auto_error=False,
)


# Only declares the scheme for the OpenAPI document; ``_bearer`` reads the header itself.
DeclaredBearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def current_tenant(request: Request, svc: ServicesDep, _declared: DeclaredBearer) -> str:
    """The tenant of the bearer token; the local tenant when auth is off (loopback only)."""
    return await tenant_of_request(request, svc)


def services_of(request: Request) -> Services:
    """The shared services, for a route that takes them without a dependency (see ``tenant_of_request``)."""
    return request.app.state.services


async def tenant_of_request(request: Request, svc: Services) -> str:
    """``current_tenant`` as a plain call. The most polled route (GET /v1/jobs/{id}) calls it
    itself and declares only the bearer scheme: FastAPI solves each dependency of a request
    through its generic machinery (cache keys, scope checks), and the three levels of
    ``TenantDep`` cost that route more than its record's read."""
    # async, so the common no-I/O path costs no thread-pool hop; the key lookup (Redis) runs
    # in the pool.
    if not svc.settings.auth_enabled:
        logging_setup.bind(tenant=LOCAL_TENANT)
        return LOCAL_TENANT
    token = _bearer(request)
    tenant = await run_in_threadpool(svc.keys.tenant_of, token)
    # Datasets remember the key that got their upload URL (a revoked key's URLs are refused).
    request.state.api_key_id = svc.keys.key_id_of(token)
    logging_setup.bind(tenant=tenant)  # every line logged for this request names its tenant
    return tenant


async def current_viewer(request: Request, svc: ServicesDep, _declared: DeclaredBearer) -> Viewer:
    """The caller as the overview sees it: its tenant, and whether its key is an admin key.
    With auth off (one user on a loopback address) the caller sees everything."""
    if not svc.settings.auth_enabled:
        return Viewer(tenant=LOCAL_TENANT, admin=True)
    tenant, admin = await run_in_threadpool(svc.keys.caller_of, _bearer(request))
    logging_setup.bind(tenant=tenant)
    return Viewer(tenant=tenant, admin=admin)


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "This API needs an API key.",
            hint="Send 'Authorization: Bearer <key>' (the CLI reads TABJOB_API_KEY).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


TenantDep = Annotated[str, Depends(current_tenant)]
ViewerDep = Annotated[Viewer, Depends(current_viewer)]
