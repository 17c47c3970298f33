"""Answers of the seed's legacy routes (``/upload``, ``/fit``, ``/predict``, ``/result``): the same
JSON they always returned, typed so the OpenAPI document shows them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from app.api import examples as ex


class LegacyUpload(BaseModel):
    """``GET /upload``: the new dataset's id and the presigned URL to PUT its bytes to."""

    model_config = ConfigDict(json_schema_extra=ex.examples({"id": ex.DATASET_ID, "url": ex.URL}))

    id: str
    url: str


class LegacyPredict(BaseModel):
    """``POST /predict``: the prediction job's id."""

    model_config = ConfigDict(json_schema_extra=ex.examples({"id": ex.PREDICT_ID}))

    id: str


class LegacyFit(LegacyPredict):
    """``POST /fit``: the job's id, which is the model id, and whether an identical fit was returned."""

    model_config = ConfigDict(json_schema_extra=ex.examples({"id": ex.FIT_ID, "deduplicated": False}))

    deduplicated: bool


class LegacyResult(BaseModel):
    """``GET /result``: a presigned URL of the prediction, and its expiry in Unix seconds."""

    model_config = ConfigDict(json_schema_extra=ex.examples({"url": ex.URL, "expires_at": 1796115900.0}))

    url: str
    expires_at: float
