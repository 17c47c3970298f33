"""The model registry as users act on it: resolve ``name@…`` references at submission, read
names, versions and aliases, and move an alias by hand (a rollback), with its history.

References are resolved once, when a job is submitted: the job records the id it resolved to and
the reference it came from, so a later upload or alias move never changes a job in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core import references
from app.core.errors import Conflict, NotFound, UserError
from app.core.references import Reference
from app.usecases.datasets import dataset_view
from app.usecases.services import Services
from app.webhooks.notices import alias_moved
from ml.metrics import HIGHER_IS_BETTER, METRICS_BY_TASK

# How many of a name's newest versions ``name@latest`` looks through for a ready one.
LATEST_LOOKBACK = 50


@dataclass(frozen=True)
class Promotion:
    """What a registered fit asks: move ``alias`` to the new version if it beats the alias's
    current version on ``metric`` by at least ``min_delta`` (and by more than nothing)."""

    alias: str
    metric: str
    min_delta: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"alias": self.alias, "metric": self.metric, "min_delta": self.min_delta}


def resolve_dataset(svc: Services, tenant: str, text: str) -> tuple[str, str | None]:
    """(dataset id, the reference it came from or None) for an id or ``name@version``/``name@latest``.

    ``name@latest`` is the newest version that is uploaded and valid: a version still awaiting its
    bytes (an upload in progress) or refused as invalid is passed over."""
    ref = references.parse(text, aliases=False)
    if ref is None:
        return text, None
    versions = svc.state.dataset_versions
    if ref.version is not None:
        found = versions.of_version(tenant, ref.name, ref.version)
        if found is None:
            raise NotFound(
                f"No dataset '{ref.name}' version {ref.version}.",
                code="dataset.version_not_found",
                hint=f"Use {ref.name}@latest, or list your datasets (tabjob datasets).",
            )
        return found, str(ref)
    for dataset_id in versions.newest(tenant, ref.name, LATEST_LOOKBACK):
        if dataset_view(svc, tenant, dataset_id).state == "uploaded":
            return dataset_id, str(ref)
    if not versions.known(tenant, ref.name):
        raise NotFound(
            f"No dataset named '{ref.name}'.",
            code="dataset.name_not_found",
            hint="Upload one with that name first (tabjob upload FILE --name NAME).",
        )
    raise Conflict(
        f"No version of dataset '{ref.name}' is uploaded and valid yet.",
        code="dataset.no_ready_version",
        hint="Finish an upload under that name (tabjob upload FILE --name NAME), then submit again.",
    )


def resolve_model(svc: Services, tenant: str, text: str) -> tuple[str, str | None]:
    """(model id, the reference it came from or None) for a fit job id or ``name@version``,
    ``name@latest`` or ``name@alias``."""
    ref = references.parse(text, aliases=True)
    if ref is None:
        return text, None
    version = resolve_version(svc, tenant, ref)
    record = svc.state.registry.version(tenant, ref.name, version)
    assert record is not None
    return record["model_id"], str(ref)


def resolve_version(svc: Services, tenant: str, ref: Reference) -> int:
    """The version number ``ref`` names in the registry (NotFound naming what is missing)."""
    registry = svc.state.registry
    if not registry.exists(tenant, ref.name):
        raise NotFound(
            f"No registered model named '{ref.name}'.",
            code="registry.not_found",
            hint="Register one with a fit that carries register_as, or list them (tabjob registry).",
        )
    if ref.latest:
        latest = registry.latest(tenant, ref.name)
        assert latest is not None
        return latest
    if ref.version is not None:
        if registry.version(tenant, ref.name, ref.version) is None:
            raise NotFound(
                f"Model '{ref.name}' has no version {ref.version}.",
                code="registry.version_not_found",
                hint=f"See its versions: tabjob registry show {ref.name}.",
            )
        return ref.version
    current = registry.alias(tenant, ref.name, ref.selector)
    if current is None:
        raise NotFound(
            f"Model '{ref.name}' has no alias '{ref.selector}'.",
            code="registry.alias_not_found",
            hint=f"Set it: tabjob registry promote {ref.name} VERSION --alias {ref.selector}.",
        )
    return current


def check_promotion(promotion: Promotion, task: str | None = None) -> None:
    """Refuse a promotion rule that cannot be decided: an unknown alias word, or a metric that is
    not one of the task's (any task's while the task is not known yet: a metric the fit does not
    measure then leaves the alias where it is, and the result says why)."""
    references.check_alias(promotion.alias)
    allowed = METRICS_BY_TASK[task] if task in METRICS_BY_TASK else tuple(HIGHER_IS_BETTER)
    if promotion.metric not in allowed:
        raise UserError(
            f"'{promotion.metric}' is not a metric of a {task or 'classification or regression'} fit.",
            code="registry.unknown_metric",
            hint=f"Use one of {', '.join(allowed)}.",
            status=422,
        )
    if promotion.min_delta < 0:
        raise UserError(
            "min_delta must be 0 or more: it is how much better the new version must be.",
            code="registry.invalid_min_delta",
            hint="Use 0 to promote any improvement.",
            status=422,
        )


def model_view(svc: Services, tenant: str, name: str) -> dict[str, Any]:
    """A registered model: its versions (oldest first) and its aliases."""
    references.check_name(name)
    registry = svc.state.registry
    if not registry.exists(tenant, name):
        raise NotFound(f"No registered model named '{name}'.", code="registry.not_found",
                       hint="List them: tabjob registry.")  # fmt: skip
    return {"name": name, "versions": registry.versions(tenant, name), "aliases": registry.aliases(tenant, name)}


def names_view(svc: Services, tenant: str) -> list[dict[str, Any]]:
    """Every registered model of the tenant: name, latest version and aliases."""
    registry = svc.state.registry
    return [
        {"name": n, "latest_version": registry.latest(tenant, n), "aliases": registry.aliases(tenant, n)}
        for n in registry.names(tenant)
    ]


def move_alias(
    svc: Services, tenant: str, name: str, alias: str, version: int, *, reason: str | None, by: str
) -> dict[str, Any]:
    """Point ``alias`` of ``name`` at ``version`` by hand (a rollback or a manual promotion),
    under the alias's lock so it never interleaves with a fit's promotion; returns the history entry."""
    references.check_alias(alias)
    model_view(svc, tenant, name)  # 404 for an unknown name
    registry = svc.state.registry
    if registry.version(tenant, name, version) is None:
        raise NotFound(f"Model '{name}' has no version {version}.", code="registry.version_not_found",
                       hint=f"See its versions: tabjob registry show {name}.")  # fmt: skip
    with registry.alias_lock(tenant, name, alias):
        entry = registry.move_alias(tenant, name, alias, version, {"by": by, "reason": reason or "moved by hand"})
    alias_moved(svc.state, svc.settings, tenant, name, alias, entry)
    return entry
