"""The chart renders for every scenario, and every object is valid for the cluster.

Core objects are validated strictly (unknown fields are errors) against Kubernetes 1.33 with
kubernetes-validate; KEDA objects against the openAPIV3 schemas of the KEDA 2.20.2 CRDs vendored
in tests/charts/crds/, made strict the same way.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import safe_yaml
from chart_render import (
    CHART_DIR,
    CRD_DIR,
    GKE_KINDS,
    KEDA_KINDS,
    KUBERNETES_VERSION,
    MONITORING_KINDS,
    by_kind,
    gpu_job_as_batch_job,
    objects_of,
    scenario_files,
    scenario_values,
)

SCENARIOS = sorted(scenario_values())


def _strict(schema: Any) -> Any:
    """A copy of a CRD schema that refuses unknown fields, as the API server's strict field
    validation does: every object schema with declared properties gets
    additionalProperties: false unless it preserves unknown fields or already says otherwise."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in strict
        and "additionalProperties" not in strict
        and not strict.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


@cache
def keda_validators() -> dict[str, jsonschema.Draft7Validator]:
    """Kind to a validator built from the vendored KEDA CRD (the storage version's schema)."""
    validators: dict[str, jsonschema.Draft7Validator] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = safe_yaml.load(path.read_text())
        version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
        schema = _strict(version["schema"]["openAPIV3Schema"])
        validators[crd["spec"]["names"]["kind"]] = jsonschema.Draft7Validator(schema)
    return validators


def test_vendored_crds_cover_every_keda_kind_the_chart_uses() -> None:
    assert set(keda_validators()) >= KEDA_KINDS
    # The provenance note travels with the vendored files.
    assert "v2.20.2" in (CRD_DIR.parent / "README.md").read_text()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_renders_the_expected_objects(scenario: str) -> None:
    values = scenario_values()[scenario]
    objects = objects_of(scenario_files(scenario))
    kinds = {obj["kind"] for obj in objects}

    assert {"ConfigMap", "Deployment", "Service", "TriggerAuthentication"} <= kinds
    lanes_on = [lane for lane in ("small", "large") if values.get("workers", {}).get(lane, {}).get("enabled", True)]
    gpu_on = values.get("gpu", {}).get("enabled", False)
    gpu_deployment = gpu_on and values.get("gpu", {}).get("scaling", "deployment") == "deployment"
    assert len(by_kind(objects, "Deployment")) == 1 + len(lanes_on) + gpu_deployment
    assert len(by_kind(objects, "ScaledObject")) == len(lanes_on) + gpu_deployment
    assert len(by_kind(objects, "ScaledJob")) == (1 if gpu_on and not gpu_deployment else 0)
    ingress_on = values.get("api", {}).get("ingress", {}).get("enabled", False)
    assert len(by_kind(objects, "Ingress")) == (1 if ingress_on else 0)
    # The chart never creates a Secret: credentials live in the existing one.
    assert "Secret" not in kinds
    # Every namespaced object names its namespace, so nothing lands in "default" by accident.
    assert all(obj["metadata"].get("namespace") == "tabjob" for obj in objects)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_core_objects_are_valid_kubernetes_1_33(scenario: str) -> None:
    objects = objects_of(scenario_files(scenario))
    core = [obj for obj in objects if obj["kind"] not in KEDA_KINDS | MONITORING_KINDS | GKE_KINDS]
    # The Jobs the GPU ScaledJob will create are core objects too.
    core += [gpu_job_as_batch_job(obj) for obj in by_kind(objects, "ScaledJob")]

    for obj in core:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_keda_objects_are_valid_for_keda_2_20(scenario: str) -> None:
    keda_objects = [obj for obj in objects_of(scenario_files(scenario)) if obj["kind"] in KEDA_KINDS]
    assert keda_objects

    for obj in keda_objects:
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        errors = sorted(keda_validators()[obj["kind"]].iter_errors(obj), key=str)
        assert not errors, f"{obj['kind']}/{obj['metadata']['name']}: {errors[0].message}"


def test_strict_keda_validation_catches_an_unknown_field() -> None:
    # Given a valid rendered ScaledObject with a misspelt field
    scaled_object = copy.deepcopy(by_kind(objects_of(scenario_files("default")), "ScaledObject")[0])
    scaled_object["spec"]["pollingIntervall"] = 15

    # Then the strict CRD schema refuses it (a plain CRD schema would let it through)
    assert not keda_validators()["ScaledObject"].is_valid(scaled_object)


def _object_schemas(schema: Any, where: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sub-schema that declares properties, with a path for messages."""
    if isinstance(schema, dict):
        if "properties" in schema:
            yield where, schema
        for key, value in schema.items():
            yield from _object_schemas(value, f"{where}.{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from _object_schemas(value, f"{where}[{index}]")


def test_values_schema_is_closed_everywhere() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())

    assert schema["additionalProperties"] is False
    for where, sub_schema in _object_schemas(schema):
        assert sub_schema.get("additionalProperties") is False, where


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_is_clean(scenario: str) -> None:
    report = helm.lint(CHART_DIR, scenario_values()[scenario], strict=True, namespace="tabjob")

    assert not report["errors"]
    # Severity 1 is informational ("icon is recommended"); warnings and errors are not allowed.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
