"""``GET /v1/usage``: the caller's quotas, what it uses of each, and its gpu-lane grant."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import ServicesDep, TenantDep
from app.api.errors import error_responses
from app.tenancy import quotas

router = APIRouter(prefix="/v1/usage", tags=["usage"], responses=error_responses(401, 503))


class QuotaUse(BaseModel):
    """One quota: its name (the code of its refusals is ``quota.<name>``), use and limit."""

    name: str = Field(examples=["datasets"])
    used: int
    limit: int


class UsagePublic(BaseModel):
    """What the tenant uses of each of its quotas, and whether it may use the gpu lane."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tenant": "acme",
                    "quotas": [
                        {"name": "datasets", "used": 12, "limit": 1000},
                        {"name": "stored_bytes", "used": 734003200, "limit": 53687091200},
                        {"name": "jobs_per_minute", "used": 3, "limit": 120},
                        {"name": "concurrent_uploads", "used": 1, "limit": 20},
                    ],
                    "gpu_lane": False,
                }
            ]
        }
    )

    tenant: str
    quotas: list[QuotaUse]
    gpu_lane: bool = Field(description="Whether an operator granted this tenant the gpu lane (GPU model families).")


@router.get("", summary="Your quotas and what you use of them")
def get_usage(svc: ServicesDep, tenant: TenantDep) -> UsagePublic:
    """Datasets held, bytes stored, jobs submitted this minute and uploads waiting, each with its
    limit; over a limit, requests are refused with 429 or 413 and the code `quota.<name>`."""
    return UsagePublic(**quotas.usage(svc, tenant))
