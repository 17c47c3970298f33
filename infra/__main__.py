"""Entry point Pulumi runs (`main: infra/` in Pulumi.yaml). All logic is in infra.program."""

import sys
from pathlib import Path

# Pulumi runs this directory as a script, which puts infra/ itself first on sys.path: then
# infra/platform would shadow the standard library's `platform`. Import from the repository
# root instead, as the tests do.
_INFRA_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _INFRA_DIR]
sys.path.insert(0, str(_INFRA_DIR.parent))

import pulumi  # noqa: E402

from infra.config import load_config  # noqa: E402
from infra.program import build  # noqa: E402

for _name, _value in build(load_config()).items():
    pulumi.export(_name, _value)
