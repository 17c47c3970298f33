"""The Pulumi program: one builder per cluster kind (infra/stacks/), all ending in the same app layer."""

from __future__ import annotations

from typing import Any

from infra.config import StackConfig
from infra.stacks.existing import build_existing
from infra.stacks.gke import build_gke
from infra.stacks.kind import build_kind


def build(cfg: StackConfig) -> dict[str, Any]:
    """Declare every resource of the stack and return its outputs (not yet exported)."""
    if cfg.cluster == "kind":
        return build_kind(cfg)
    if cfg.cluster == "gke":
        return build_gke(cfg)
    return build_existing(cfg)
