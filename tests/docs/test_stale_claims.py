"""Docs that had gone stale (issue 26) stay true: the router list, the chart's description of the
GPU lane, and the README's word on the target column."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_development_guide_lists_every_router():
    routers = {p.stem for p in (ROOT / "app/api/routes").glob("*.py") if p.stem != "__init__"}
    line = next(line for line in (ROOT / "docs/development.md").read_text().splitlines() if "one router per" in line)
    listed = set(re.findall(r"`(\w+)`", line.split("one router per resource", 1)[1].split(")")[0]))
    assert listed == routers


def test_the_charts_description_says_how_the_gpu_lane_scales_by_default():
    chart = yaml.safe_load((ROOT / "charts/tabjob/Chart.yaml").read_text())
    default = yaml.safe_load((ROOT / "charts/tabjob/values.yaml").read_text())["gpu"]["scaling"]
    description = " ".join(chart["description"].split())
    assert default == "deployment"
    assert "GPU lane as a KEDA ScaledJob." not in description
    assert "gpu.scaling=scaledjob" in description


def test_the_readme_does_not_say_the_target_must_be_y():
    intro = (ROOT / "README.md").read_text().split("\n\n")[1]
    assert "target column `y`" not in intro and "--target" in intro
