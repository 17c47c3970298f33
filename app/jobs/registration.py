"""Registering a finished fit and deciding its promotion, inside the fit job.

The new version is scored on the evaluation dataset in the job's own process (``ml.evaluation``).
Promotion compares it with the alias's current version **on the same rows**: that version's
score on this dataset is read from the registry when it was measured before, and measured now
otherwise. The alias moves under its lock, and only if it still points at the version compared
with; if another fit moved it meanwhile, the new version is compared again with that one. So two
fits finishing together cannot both win, and neither wins against a version it never faced.
"""

from __future__ import annotations

import time
from typing import Any

from app.core.domain import Job
from app.core.errors import InfraError, UserError
from app.core.storage import dataset_key, model_key
from app.jobs.actors import run_operation, scratch_dir, url_expiry_s
from app.jobs.context import WorkerContext
from app.webhooks.notices import Webhook, alias_moved
from ml.metrics import HIGHER_IS_BETTER

# How many times a promotion compares again after the alias moved under it.
MAX_COMPARISONS = 5


def register_fit(ctx: WorkerContext, job: Job, summary: dict[str, Any], time_limit_s: float) -> dict[str, Any]:
    """Register the fit ``job`` (its ``summary`` written) as the next version of its model, decide
    its promotion, and return the result's ``registry`` part: name, version, metrics, promoted,
    compared_with, reason."""
    assert job.register is not None
    reg, registry = job.register, ctx.state.registry
    name, eval_id = reg["name"], reg.get("evaluate_on")
    if eval_id:  # scored by the fit itself when it evaluated on this dataset, else here
        metrics = _fit_evaluation(job, summary) or _score(ctx, job, job.id, summary["model_sha256"], time_limit_s)
    else:  # without evaluation data, the fit's own held-out metrics (where the fit reports them)
        metrics = {k: v for k, v in (summary.get("validation") or {}).items() if isinstance(v, int | float)}
    record = {
        "model_id": job.id, "dataset_id": job.dataset_id, "dataset_ref": job.dataset_ref,
        "evaluate_on": eval_id, "evaluate_on_ref": reg.get("evaluate_on_ref"), "metrics": metrics,
        "created_at": time.time(), "by": reg.get("by"), "model": job.model, "params": job.params,
        "target": job.target, "model_sha256": summary["model_sha256"],
    }  # fmt: skip
    version, _ = registry.register(job.tenant, name, job.id, record)
    if eval_id:
        registry.record_evaluation(job.tenant, name, version, eval_id, metrics)
    ctx.state.events.add(job.id, "registered", f"Registered as {name} version {version}.")
    out: dict[str, Any] = {"name": name, "version": version, "metrics": metrics, "promoted": False}
    if reg.get("promote"):
        out |= _promote(ctx, job, version, metrics, time_limit_s)
        kind = "promoted" if out["promoted"] else "not_promoted"
        ctx.state.events.add(job.id, kind, out["reason"])
    return out


def _fit_evaluation(job: Job, summary: dict[str, Any]) -> dict[str, Any] | None:
    """The metrics the fit measured on the whole ``evaluate_on`` dataset (the fit report's
    ``evaluation``), when it scored the same dataset the registration names."""
    evaluation = summary.get("evaluation") or {}
    same = getattr(job, "evaluate_on", None) == (job.register or {}).get("evaluate_on")
    if not same or not isinstance(evaluation.get("metrics"), dict):
        return None
    return {k: v for k, v in evaluation["metrics"].items() if v is None or isinstance(v, int | float)}


def _promote(ctx: WorkerContext, job: Job, version: int, metrics: dict[str, Any], time_limit_s: float) -> dict:
    assert job.register is not None
    reg, registry, tenant = job.register, ctx.state.registry, job.tenant
    name, rule = reg["name"], reg["promote"]
    alias, metric, min_delta = rule["alias"], rule["metric"], float(rule.get("min_delta") or 0.0)
    for _ in range(MAX_COMPARISONS):
        current = registry.alias(tenant, name, alias)
        if current is None or current == version:
            with registry.alias_lock(tenant, name, alias):
                if registry.alias(tenant, name, alias) != current:
                    continue
                reason = f"Version {version} took the free alias '{alias}' (nothing to compare with)."
                if current is None:
                    _move(ctx, job, alias, version, reason, {"metric": metric, "new": metrics.get(metric)})
                else:  # this fit moved it before it was redelivered
                    reason = f"Version {version} already holds '{alias}'."
                return {"alias": alias, "metric": metric, "promoted": True, "compared_with": None, "reason": reason}
        champion = _champion_metrics(ctx, job, current, time_limit_s)
        if isinstance(champion, str):  # it could not be scored on this dataset: never replaced blindly
            return {"alias": alias, "metric": metric, "promoted": False, "compared_with": {"version": current},
                    "reason": champion}  # fmt: skip
        promoted, reason = decide(metric, metrics.get(metric), champion.get(metric), min_delta, version, current)
        with registry.alias_lock(tenant, name, alias):
            if registry.alias(tenant, name, alias) != current:
                continue  # moved while we compared: compare with the version it points at now
            if promoted:
                compared = {"metric": metric, "new": metrics.get(metric), "old": champion.get(metric)}
                _move(ctx, job, alias, version, reason, compared)
        compared_with = {"version": current, metric: champion.get(metric)}
        return {"alias": alias, "metric": metric, "promoted": promoted, "compared_with": compared_with,
                "reason": reason}  # fmt: skip
    raise InfraError(f"The alias '{alias}' of '{name}' kept moving while this fit compared with it.",
                     code="registry.busy", hint="The fit is retried.")  # fmt: skip


def decide(
    metric: str, new: float | None, old: float | None, min_delta: float, version: int, current: int
) -> tuple[bool, str]:
    """Whether ``version`` replaces ``current``: better on ``metric`` (its direction from
    ``ml.metrics.HIGHER_IS_BETTER``) by more than nothing and by at least ``min_delta``; and why."""
    if new is None or old is None:
        which = version if new is None else current
        return False, f"'{metric}' could not be measured for version {which} on this dataset; the alias stays."
    higher = HIGHER_IS_BETTER[metric]
    gain = new - old if higher else old - new
    scores = f"{metric} {new:.6g} against {old:.6g} for version {current}"
    if gain > 0 and gain >= min_delta:
        return True, f"Version {version} is better: {scores} (improvement {gain:.6g} >= min_delta {min_delta:g})."
    if gain > 0:
        return False, f"Version {version} is better by {gain:.6g} only, less than min_delta {min_delta:g}: {scores}."
    word = "equal" if gain == 0 else "worse"
    return False, f"Version {version} is {word}: {scores}; the alias stays on version {current}."


def _champion_metrics(ctx: WorkerContext, job: Job, current: int, time_limit_s: float) -> dict[str, Any] | str:
    """The alias's current version's metrics on this evaluation dataset (measured now when never
    measured on it), or why they cannot be had."""
    assert job.register is not None
    registry, tenant, name, eval_id = ctx.state.registry, job.tenant, job.register["name"], job.register["evaluate_on"]
    known = registry.evaluation(tenant, name, current, eval_id)
    if known is not None:
        return known
    record = registry.version(tenant, name, current)
    if record is None or not record.get("model_sha256"):
        return f"Version {current} has no model that can be verified; the alias stays."
    ctx.state.events.add(job.id, "progress", f"Scoring version {current} on the same evaluation data.",
                         phase="evaluating")  # fmt: skip
    try:
        metrics = _score(ctx, job, record["model_id"], record["model_sha256"], time_limit_s)
    except UserError as exc:  # its model was deleted, or it takes other columns
        return f"Version {current} could not be scored on this dataset ({exc.message}); the alias stays."
    registry.record_evaluation(tenant, name, current, eval_id, metrics)
    return metrics


def _score(ctx: WorkerContext, job: Job, model_job_id: str, sha256: str, time_limit_s: float) -> dict[str, Any]:
    """Metrics of the model of ``model_job_id`` on the job's evaluation dataset, in the job process."""
    assert job.register is not None
    reg, store, expires_s = job.register, ctx.store, url_expiry_s(time_limit_s)
    if store.stat(model_key(job.tenant, model_job_id)) is None:
        raise UserError(f"The model file of '{model_job_id}' is gone.", code="model.not_found")
    kwargs = {
        "data_url": store.internal_get_url(dataset_key(job.tenant, reg["evaluate_on"]), expires_s),
        "model_url": store.internal_get_url(model_key(job.tenant, model_job_id), expires_s),
        "model_sha256": sha256,
        # read pinned to the version checked at submission (app/jobs/pinned.py)
        "data_etag": reg.get("evaluate_on_etag"), "data_bytes": reg.get("evaluate_on_bytes"),
    }  # fmt: skip
    with scratch_dir(ctx, job.id) as scratch:
        summary = run_operation(ctx, job, "evaluate", {**kwargs, "scratch_dir": scratch}, time_limit_s)
    return summary["metrics"]


def _move(ctx: WorkerContext, job: Job, alias: str, version: int, reason: str, compared: dict[str, Any]) -> None:
    """Move the alias (the caller holds its lock) and tell: the tenant's notices, the fit's
    webhook, and its schedule's webhook when a schedule submitted it."""
    assert job.register is not None
    name = job.register["name"]
    entry = ctx.state.registry.move_alias(
        job.tenant, name, alias, version,
        {"by": job.register.get("by"), "job_id": job.id, "reason": reason, "compared": compared},
    )  # fmt: skip
    webhooks: list[Webhook] = []
    if job.webhook_url and job.webhook_secret:
        webhooks.append((job.webhook_url, job.webhook_secret))
    by = job.register.get("by") or ""
    if by.startswith("schedule:"):
        schedule = ctx.state.schedules.get(by.removeprefix("schedule:"))
        if schedule and schedule.get("webhook_url"):
            webhooks.append((schedule["webhook_url"], schedule["webhook_secret"]))
    alias_moved(ctx.state, ctx.settings, job.tenant, name, alias, entry, webhooks)
