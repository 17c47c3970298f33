"""Fixtures for the Pulumi program tests: each stack's resource graph, declared once."""

from __future__ import annotations

import pytest
from infra_harness import DIGEST, GPU_DIGEST, StackRun, run_program, stack_config


@pytest.fixture(scope="session")
def deployed_stacks() -> dict[str, StackRun]:
    """dev, staging and production as CI/CD deploys them (digests set), run once per session."""
    runs = {}
    for stack in ("dev", "staging", "production"):
        config = stack_config(stack)
        config.update(imageDigest=DIGEST, gpuImageDigest=GPU_DIGEST)
        runs[stack] = run_program(stack, config)
    return runs
