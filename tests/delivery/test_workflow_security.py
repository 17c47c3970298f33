"""Supply-chain hygiene of the delivery path: SHA pins, no persisted token, Dependabot, zizmor.

A tag can be moved to other code by whoever controls the action's repository; a commit SHA
cannot. Checkouts that keep the job's token in .git/config hand it to every later step (and to
any artifact of the workspace). zizmor, GitHub Actions' security linter, checks all of this and
more, offline, and `task lint` runs it.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from ._support import REPO_ROOT, VENV_BIN, action_paths, load_yaml, run_tool, steps_of, workflow_paths

# `uses: owner/repo@<40 hex> # v1.2.3`: the SHA runs, the comment tells readers and Dependabot
# which release it is.
PINNED_LINE = re.compile(
    r"^\s*(?:- )?uses:\s*(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40}) # (?P<version>v\d+\.\d+\.\d+)\s*$"
)
MIN_COOLDOWN_DAYS = 7


def github_files() -> list[Path]:
    return workflow_paths() + action_paths()


def test_every_third_party_action_is_pinned_by_sha_with_its_version() -> None:
    pins: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in github_files():
        for line in path.read_text().splitlines():
            if not re.match(r"^\s*(- )?uses:", line) or "./.github/" in line:
                continue
            match = PINNED_LINE.match(line)
            assert match, f"{path.name}: not pinned by SHA with a version comment: {line.strip()}"
            pins[match["action"]].add((match["sha"], match["version"]))
    assert pins, "no third-party action found"
    # One release per action everywhere: two SHAs for one action are a half-done update.
    for action, releases in pins.items():
        assert len(releases) == 1, f"{action} is pinned to several commits: {sorted(releases)}"


def test_checkouts_never_persist_the_token() -> None:
    checkouts = 0
    for path in workflow_paths():
        for name, job in load_yaml(path)["jobs"].items():
            for step in steps_of(job):
                if step.get("uses", "").startswith("actions/checkout@"):
                    checkouts += 1
                    assert step.get("with", {}).get("persist-credentials") is False, (path.name, name)
    assert checkouts


def test_dependabot_keeps_actions_images_and_the_lock_current_after_a_cooldown() -> None:
    config = load_yaml(REPO_ROOT / ".github" / "dependabot.yml")
    ecosystems = {update["package-ecosystem"]: update for update in config["updates"]}
    # `uv` is Dependabot's ecosystem for uv.lock (Python packages); `pip` would not update it.
    assert set(ecosystems) >= {"github-actions", "docker", "uv"}
    # The composite actions pin actions too; Dependabot must look in their folder as well.
    assert "/.github/actions/*" in ecosystems["github-actions"]["directories"]
    for name, update in ecosystems.items():
        assert update.get("cooldown", {}).get("default-days", 0) >= MIN_COOLDOWN_DAYS, name


def test_lint_runs_zizmor_offline_failing_on_medium_findings(taskfile: dict) -> None:
    lint = taskfile["tasks"]["lint"]["cmds"]
    assert "zizmor --offline --min-severity medium .github/" in lint


def test_zizmor_finds_nothing_of_medium_severity_or_above() -> None:
    if not (VENV_BIN / "zizmor").exists():
        pytest.skip("zizmor is not installed in this environment (it comes with the dev group: `uv sync`)")
    result = run_tool("zizmor", "--offline", "--min-severity", "medium", "--format", "json", ".github/")
    findings = json.loads(result.stdout or "[]")
    summary = [(f["ident"], f["determinations"]["severity"]) for f in findings]
    assert result.returncode == 0 and findings == [], f"{summary}\n{result.stderr[-2000:]}"
