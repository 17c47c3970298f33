"""The client's methods for models over time: registered fits, the model registry and its
aliases, schedules, and the notices of both (``Client`` has them all).

They return the API's JSON as dicts (docs/registry.md shows each shape); references such as
``sales@latest`` or ``churn@champion`` are accepted wherever a dataset or model id is.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tabjob.results import Job


class RegistryMethods:
    """Mixed into ``tabjob.Client``: needs its ``_call`` and ``_submit``."""

    _call: Any
    _submit: Any

    def register_fit(
        self,
        dataset_id: str,
        name: str,
        *,
        evaluate_on: str | None = None,
        promote: str | None = None,
        metric: str = "accuracy",
        min_delta: float = 0.0,
        params: dict[str, Any] | None = None,
        lane: str = "auto",
        model: str | None = None,
        target: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Train a model that becomes the next version of ``name`` in the registry.

        Parameters:
            dataset_id: the training data: an id, ``name@3`` or ``name@latest``.
            evaluate_on: a labelled dataset the new version is scored on (id or ``name@…``).
            promote: an alias (``champion``) to move to the new version if it beats the alias's
                current version on ``metric``, both scored on ``evaluate_on``, by at least
                ``min_delta``; the first version of a name takes a free alias. Needs ``evaluate_on``.
            metric: ``accuracy``, ``f1``, ``roc_auc`` or ``log_loss`` (lower is better) for a
                classification.

        The finished job's ``result["registry"]`` says the version, its metrics, whether it was
        promoted, the version it was compared with and why.
        """
        body: dict[str, Any] = {"kind": "fit", "dataset_id": dataset_id, "params": params, "lane": lane}
        body |= {"model": model, "target": target, "register_as": name, "evaluate_on": evaluate_on}
        if promote:
            body["promote"] = {"alias": promote, "metric": metric, "min_delta": min_delta}
        return self._submit(body, idempotency_key, webhook_url, webhook_secret)

    # -- the registry -------------------------------------------------------------------------

    def registry(self) -> list[dict[str, Any]]:
        """Your registered models: ``name``, ``latest_version`` and ``aliases`` of each."""
        return self._call("GET", "/v1/registry")["items"]

    def registered_model(self, name: str) -> dict[str, Any]:
        """A registered model: ``versions`` (oldest first: model_id, dataset_id, metrics...) and ``aliases``."""
        return self._call("GET", f"/v1/registry/{quote(name)}")

    def promote(self, name: str, version: int, *, alias: str = "champion", reason: str | None = None) -> dict[str, Any]:
        """Point ``alias`` of ``name`` at ``version`` by hand (a rollback); returns the recorded move."""
        body = {"version": version, "reason": reason}
        return self._call("PUT", f"/v1/registry/{quote(name)}/aliases/{quote(alias)}", json=body)

    def alias_history(self, name: str, alias: str = "champion") -> dict[str, Any]:
        """Every move of ``alias``, oldest first: version, from, at, by, reason, metrics compared."""
        return self._call("GET", f"/v1/registry/{quote(name)}/aliases/{quote(alias)}/history")

    def notices(self, after: int = 0) -> dict[str, Any]:
        """Alias moves and schedule failures from position ``after`` on (``next_after`` for the next call)."""
        return self._call("GET", "/v1/notices", params={"after": after})

    # -- schedules ----------------------------------------------------------------------------

    def create_schedule(
        self,
        cron: str,
        job: dict[str, Any],
        *,
        timezone: str = "UTC",
        concurrency: str = "forbid",
        catchup: str = "last",
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> dict[str, Any]:
        """Submit ``job`` (a fit or predict body, as ``POST /v1/jobs`` takes) on every tick of
        ``cron`` (minute hour day-of-month month day-of-week) in ``timezone``.

        Parameters:
            concurrency: ``forbid`` skips a tick while the previous run's job is active; ``allow``.
            catchup: ``last`` runs the most recent tick missed during an outage; ``none`` none.
            webhook_url, webhook_secret: notified of failed runs and of alias moves its fits make.
        """
        body: dict[str, Any] = {"cron": cron, "timezone": timezone, "job": job, "concurrency": concurrency,
                                "catchup": catchup}  # fmt: skip
        if webhook_url:
            body["webhook"] = {"url": webhook_url, "secret": webhook_secret or ""}
        return self._call("POST", "/v1/schedules", json=body)

    def schedules(self) -> list[dict[str, Any]]:
        """Your schedules with their next tick."""
        return self._call("GET", "/v1/schedules")["items"]

    def schedule(self, schedule_id: str) -> dict[str, Any]:
        """A schedule and its ``runs``, newest first (tick, job id and that job's status)."""
        return self._call("GET", f"/v1/schedules/{quote(schedule_id)}")

    def pause_schedule(self, schedule_id: str) -> dict[str, Any]:
        """Pause a schedule: no tick fires until it is resumed."""
        return self._call("POST", f"/v1/schedules/{quote(schedule_id)}/pause")

    def resume_schedule(self, schedule_id: str) -> dict[str, Any]:
        """Resume from the next tick (the ticks of the pause are not caught up)."""
        return self._call("POST", f"/v1/schedules/{quote(schedule_id)}/resume")

    def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule and its runs (the jobs it submitted stay)."""
        self._call("DELETE", f"/v1/schedules/{quote(schedule_id)}")
