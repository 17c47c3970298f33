"""infra/__main__.py, run the way Pulumi runs it: the directory as a script."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from infra_harness import ROOT, kind_image_environ

# Runs in a fresh interpreter with infra/ first on sys.path, as `runpy.run_path("infra")` (what
# Pulumi's Python host does) leaves it, and with the dev stack's config under mocks.
SCRIPT = textwrap.dedent(
    """
    import runpy, sys
    sys.path[:0] = [{tests!r}]
    import pulumi
    from infra_harness import configure, stack_config

    mocks = configure("dev", stack_config("dev"))

    @pulumi.runtime.test
    def program():
        runpy.run_path("infra", run_name="__main__")

    program()
    import platform
    print("stdlib platform:", platform.__file__.startswith(sys.base_prefix))
    print("resources:", len(mocks.resources))
    """
)


@pytest.mark.slow  # starts a Python process that runs the program
def test_pulumi_entry_point_declares_the_stack_and_keeps_stdlib_platform():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(tests=str(ROOT / "tests" / "infra"))],
        cwd=ROOT,
        # What `task dev` hands `pulumi up` on the dev (kind) stack.
        env={**os.environ, **kind_image_environ()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stdlib platform: True" in result.stdout
    count = int(result.stdout.split("resources:")[1].split()[0])
    assert count > 10
