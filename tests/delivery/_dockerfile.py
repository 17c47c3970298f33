"""Reading Dockerfiles the way the delivery tests need: stages, instructions, `uv sync` runs.

Docker cannot run where these tests run, so the images are checked by reading their Dockerfiles.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

DOCKERFILES = ["Dockerfile", "Dockerfile.gpu"]


@dataclass
class Stage:
    """One build stage: its base (FROM), its alias and its instructions (keyword, arguments)."""

    base: str
    alias: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args_of(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_stages(path: Path) -> list[Stage]:
    """Split a Dockerfile into stages (continuation lines joined, comments dropped)."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            alias = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], alias=alias))
        elif stages:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


def uv_sync_commands(stages: list[Stage]) -> list[list[str]]:
    """The tokens of every `uv sync` run in the Dockerfile."""
    commands = []
    for stage in stages:
        for run in stage.args_of("RUN"):
            tokens = shlex.split(run)
            for i, token in enumerate(tokens):
                if token == "uv" and tokens[i + 1 : i + 2] == ["sync"]:
                    end = next((j for j in range(i, len(tokens)) if tokens[j] == "&&"), None)
                    commands.append(tokens[i:end])
    return commands
