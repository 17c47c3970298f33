"""What KEDA scales each lane on, for clusters where KEDA cannot log in to the broker itself.

KEDA's redis trigger sends a static password and checks the server certificate's names
(kedacore/keda pkg/scalers/redis_scaler.go: `password` from authParams, TLS through
util.NewTLSConfigWithPassword, whose only escape is `unsafeSsl`). Memorystore for Valkey with IAM
authentication wants a fresh access token instead, which KEDA's redis trigger cannot fetch. There
the chart points KEDA's `metrics-api` trigger at this route: the API already holds a logged-in
broker client, and answers the same count the redis trigger would read (`HLEN
dramatiq:<lane>.msgs`: pending and in-flight messages).

The route is off (404) unless `TABJOB_SCALER_TOKEN` is set, and then needs that token as a bearer
token (KEDA's `authModes: bearer`); it is left out of the OpenAPI document: it is not user API.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request

from app.api.deps import ServicesDep
from app.core.domain import Lane
from app.core.errors import NotFound, Unauthorized
from app.core.keys import lane_queue

router = APIRouter(prefix="/internal/scaling", include_in_schema=False)


@router.get("/lanes/{lane}")
async def lane_messages(lane: Lane, request: Request, svc: ServicesDep) -> dict[str, object]:
    """``{"lane", "messages", "pending"}``: messages pending or in flight, and pending only."""
    expected = svc.settings.scaler_token.get_secret_value() if svc.settings.scaler_token else ""
    if not expected:
        raise NotFound("Not found.", code="scaling.off")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("The scaler token is missing or wrong.", hint="KEDA sends it from the release's Secret.")
    assert svc.state.conn.asyncio is not None, "API processes always have an asyncio broker client"
    queue = lane_queue(lane)
    pipe = svc.state.conn.asyncio.client.pipeline(transaction=False)
    pipe.hlen(f"{queue}.msgs")
    pipe.llen(queue)
    messages, pending = await pipe.execute()
    return {"lane": lane, "messages": messages, "pending": pending}
