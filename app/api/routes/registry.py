"""``/v1/registry``: registered models, their versions and aliases, alias moves and their
history; ``/v1/notices``: the tenant's alias moves and schedule failures."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from app.api.deps import ServicesDep, TenantDep
from app.api.errors import error_responses
from app.api.job_requests import actor_of
from app.api.registry_schemas import (
    AliasHistoryPublic,
    AliasMove,
    AliasMovePublic,
    NoticesPublic,
    RegistryModelPublic,
    RegistryNamesPublic,
)
from app.core import references
from app.usecases import registry as usecase

router = APIRouter(prefix="/v1/registry", tags=["registry"], responses=error_responses(401, 404, 422, 503))
notices_router = APIRouter(prefix="/v1/notices", tags=["registry"], responses=error_responses(401, 422, 503))


@router.get("", summary="Your registered models: name, latest version, aliases")
def list_models(svc: ServicesDep, tenant: TenantDep) -> RegistryNamesPublic:
    """Every model name a registered fit (`register_as`) created, with its latest version and aliases."""
    return RegistryNamesPublic.model_validate({"items": usecase.names_view(svc, tenant)})


@router.get("/{name}", summary="A registered model: its versions and aliases")
def show_model(name: str, svc: ServicesDep, tenant: TenantDep) -> RegistryModelPublic:
    """Versions oldest first (the fit job that is each one's model, its training and evaluation
    data, its metrics, who registered it) and where each alias points."""
    return RegistryModelPublic.model_validate(usecase.model_view(svc, tenant, name))


@router.put(
    "/{name}/aliases/{alias}", responses=error_responses(400, 409), summary="Point an alias at a version (rollback)"
)
def move_alias(
    name: str, alias: str, body: AliasMove, request: Request, svc: ServicesDep, tenant: TenantDep
) -> AliasMovePublic:
    """Moves `alias` to `version` by hand, under the same lock fits promote under, and records the
    move in the alias's history with `reason` and who asked. Predicts by `name@alias` use the
    new version from their submission on; jobs already submitted keep the model they resolved."""
    entry = usecase.move_alias(svc, tenant, name, alias, body.version, reason=body.reason, by=actor_of(request))
    return AliasMovePublic.model_validate(entry)


@router.get("/{name}/aliases/{alias}/history", summary="Every move of an alias, oldest first")
def alias_history(name: str, alias: str, svc: ServicesDep, tenant: TenantDep) -> AliasHistoryPublic:
    """Which version the alias pointed at when: each move's version, the one before, when, by
    which key or schedule, why, and the metrics compared when a fit promoted itself."""
    references.check_alias(alias)
    usecase.model_view(svc, tenant, name)
    items = svc.state.registry.history(tenant, name, alias)
    current = svc.state.registry.alias(tenant, name, alias)
    return AliasHistoryPublic.model_validate({"name": name, "alias": alias, "current": current, "items": items})


@notices_router.get("", summary="Alias moves and schedule failures, from index `after` on")
def notices(svc: ServicesDep, tenant: TenantDep, after: int = Query(0, ge=0)) -> NoticesPublic:
    """The tenant's notices (`registry.alias_moved`, `schedule.failed`, `webhook.failed`), oldest
    first from position `after`: pass the previous page's `next_after` to get only new ones."""
    items = svc.state.notices.since(tenant, after=after)
    return NoticesPublic.model_validate({"items": items, "next_after": items[-1]["seq"] + 1 if items else after})
