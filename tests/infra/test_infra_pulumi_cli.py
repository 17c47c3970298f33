"""The Pulumi CLI's project-config rules (tests/infra/pulumi_cli.py) on every stack file and on
every configuration the workflows create, and what the program then does with it.

The CLI runs `mergeConfig` (pulumi/pulumi pkg/workspace/config.go) before any preview, up or
destroy: a stack it refuses never reaches the program, and every project default reaches it as
if the stack had set it. Mock-based program tests skip the CLI, so these tests put it back.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pytest
import safe_yaml
from infra_harness import DIGEST, ENVIRONMENTS, GPU_DIGEST, PROJECT, ROOT, configure, kind_image_environ, run_program
from pulumi_cli import (
    SECRET_LOOKING_KEY,
    ConfigValue,
    Project,
    PulumiConfigError,
    config_set,
    load_project,
    merge_config,
    read_stack_file,
)

from infra.config import load_config

STACKS = ("dev", "staging", "production")
RELEASE = "kubernetes:helm.sh/v3:Release"
WORKFLOW_FILES = sorted(
    [*(ROOT / ".github" / "workflows").glob("*.yml"), *(ROOT / ".github").glob("actions/*/action.yml")]
)


def _project(tmp_path: Path, text: str) -> Project:
    path = tmp_path / "Pulumi.yaml"
    path.write_text(text)
    return load_project(path)


# ---- the port follows the CLI (cases from pulumi/pulumi pkg/workspace/config_project_test.go)


def test_keys_without_default_or_value_are_missing_with_the_clis_wording(tmp_path):
    project = _project(
        tmp_path,
        "name: test\nruntime: python\nconfig:\n  values:\n    type: array\n    items:\n      type: string\n"
        "  another:\n    type: string\n  world:\n    type: string\n  hello: {type: integer}\n  kept: 1\n",
    )
    with pytest.raises(PulumiConfigError) as missing:
        merge_config("dev", project, {"test:another": ConfigValue("x"), "test:world": ConfigValue("y")})
    assert str(missing.value) == "Stack 'dev' is missing configuration values 'hello' and 'values'"
    with pytest.raises(PulumiConfigError, match=r"^Stack 'dev' is missing configuration values 'another', 'hello', "):
        merge_config("dev", project, {})
    merged = merge_config(
        "dev",
        project,
        {
            "test:values": ConfigValue('["a"]', object=True),
            "test:another": ConfigValue("x"),
            "test:world": ConfigValue("y"),
            "test:hello": ConfigValue("3"),
        },
    )
    # A shorthand project value is a default, merged as text.
    assert merged["test:kept"] == ConfigValue("1")


def test_types_secrets_and_namespaces_are_checked_as_the_cli_does(tmp_path):
    project = _project(tmp_path, "name: test\nruntime: python\nconfig:\n  n:\n    type: integer\n    secret: true\n")
    with pytest.raises(PulumiConfigError, match="key 'n' must be encrypted as it's secret"):
        merge_config("dev", project, {"test:n": ConfigValue("20")})
    assert merge_config("dev", project, {"test:n": ConfigValue("20", secure=True)})
    with pytest.raises(PulumiConfigError, match="key 'n' must be of type 'integer'"):
        merge_config("dev", project, {"test:n": ConfigValue("twenty", secure=True)})
    for text, message in [
        ("  aws:region:\n    type: string\n    value: x\n", "should not define a type"),
        ("  aws:region:\n    default: x\n", "should not define a default value"),
        ("  zones:\n    type: array\n", "does not match the project schema|does not specify the underlying type"),
        ("  port:\n    type: integer\n    default: eighty\n", "is not of the expected type 'integer'"),
        ("  port:\n    type: number\n", "does not match the project schema"),
    ]:
        with pytest.raises(PulumiConfigError, match=message):
            _project(tmp_path, f"name: test\nruntime: python\nconfig:\n{text}")


def test_a_secret_with_a_default_is_refused_on_every_stack_that_does_not_set_it(tmp_path):
    # Why the existing-cluster secrets are not declared `secret: true` in Pulumi.yaml.
    project = _project(tmp_path, "name: test\nruntime: python\nconfig:\n  k:\n    type: string\n    secret: true\n")
    with pytest.raises(PulumiConfigError, match="missing configuration value 'k'"):
        merge_config("dev", project, {})
    project = _project(
        tmp_path, 'name: test\nruntime: python\nconfig:\n  k:\n    type: string\n    secret: true\n    default: ""\n'
    )
    with pytest.raises(PulumiConfigError, match="must be encrypted"):
        merge_config("dev", project, {})


# ---- our Pulumi.yaml and stacks


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_is_accepted_by_the_cli(stack):
    merged = merge_config(stack, PROJECT, read_stack_file(ENVIRONMENTS / f"Pulumi.{stack}.yaml"))
    assert set(merged) == {f"tabjob:{key}" for key in PROJECT.config}


def test_every_stack_file_in_environments_is_tested():
    assert {p.name for p in ENVIRONMENTS.glob("Pulumi.*.yaml")} == {f"Pulumi.{s}.yaml" for s in STACKS}


def _load(stack: str, values: dict[str, ConfigValue], *, cli: bool):
    """load_config with the stack's values, merged by the CLI's rules or not."""
    plain = {key.split(":", 1)[1]: safe_yaml.load(v.text) if v.object else v.text for key, v in values.items()}
    configure(stack, plain, cli=cli)
    return load_config(pulumi.Config("tabjob"), environ=kind_image_environ())


@pytest.mark.parametrize("stack", STACKS)
def test_project_defaults_change_nothing_the_program_decides(stack):
    # The CLI hands the program every default as if the stack had set it; the configuration the
    # program builds must be the one its own defaults give (the old `imageTag: default: dev`
    # made every GKE run look as if a tag had been set on purpose).
    values = read_stack_file(ENVIRONMENTS / f"Pulumi.{stack}.yaml")
    if stack != "dev":
        values["tabjob:bootstrap"] = ConfigValue("true")
    assert _load(stack, values, cli=True) == _load(stack, values, cli=False)


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_a_gke_run_without_a_digest_stops_instead_of_deploying_a_default_tag(stack):
    values = read_stack_file(ENVIRONMENTS / f"Pulumi.{stack}.yaml")
    config = {k.split(":", 1)[1]: v.text for k, v in values.items()}
    with pytest.raises(ValueError, match="tabjob:imageDigest is not set"):
        run_program(stack, config)


# ---- the configurations the workflows create


@dataclass(frozen=True)
class ConfigSet:
    """One `pulumi config set` line of a workflow or action script."""

    source: str
    key: str
    value: str
    secret: bool


# Shell variables the scripts set from a digest; anything else must be added here on purpose.
_VARIABLE_VALUES = {
    "IMAGE_DIGEST": DIGEST,
    "GPU_IMAGE_DIGEST": GPU_DIGEST,
    "image": DIGEST,
    "gpu": GPU_DIGEST,
}


def _scripts(path: Path) -> list[str]:
    data = safe_yaml.load(path.read_text())
    steps = [step for job in (data.get("jobs") or {}).values() for step in job.get("steps", [])]
    steps += (data.get("runs") or {}).get("steps", [])
    return [step["run"] for step in steps if "run" in step]


def workflow_config_groups() -> list[list[ConfigSet]]:
    """Each run of consecutive `pulumi config set` lines in the workflows and actions: one
    configuration a job hands `pulumi preview`/`up` (on top of the committed stack file)."""
    groups: list[list[ConfigSet]] = []
    for path in WORKFLOW_FILES:
        for script in _scripts(path):
            current: list[ConfigSet] = []
            for line in script.splitlines():
                stripped = line.strip()
                words = shlex.split(stripped, comments=True) if stripped.startswith("pulumi config set") else []
                if words[:3] != ["pulumi", "config", "set"]:
                    if current:
                        groups.append(current)
                    current = []
                    continue
                args = [w for w in words[3:] if not w.startswith("--")]
                stack_flag = "--stack" in words[3:]
                key, value = args[1:3] if stack_flag else args[0:2]
                variable = re.fullmatch(r"\$\{?(\w+)\}?", value)
                if variable:
                    assert variable.group(1) in _VARIABLE_VALUES, f"{path.name}: what does ${variable.group(1)} hold?"
                    value = _VARIABLE_VALUES[variable.group(1)]
                current.append(ConfigSet(path.name, key, value, "--secret" in words))
            if current:
                groups.append(current)
    return groups


GROUPS = workflow_config_groups()


def test_the_workflows_set_config_where_expected():
    sources = {group[0].source for group in GROUPS}
    assert {"action.yml"} <= sources
    keys = {item.key for group in GROUPS for item in group}
    assert {"tabjob:imageDigest", "tabjob:gpuImageDigest", "tabjob:bootstrap"} <= keys


def test_workflow_keys_are_declared_and_never_look_like_secrets():
    for group in GROUPS:
        for item in group:
            namespace, name = item.key.split(":", 1)
            assert namespace == "tabjob" and name in PROJECT.config, item
            # config.go looksLikeSecret: a plain set of such a key can be refused.
            assert item.secret or not SECRET_LOOKING_KEY.search(name), item


@pytest.mark.parametrize("stack", ["staging", "production"])
@pytest.mark.parametrize("group", GROUPS, ids=lambda g: "+".join(f"{i.key.split(':')[1]}={i.value[:12]}" for i in g))
def test_each_workflow_configuration_is_accepted_and_deploys_digests_or_bootstraps(stack, group):
    values = read_stack_file(ENVIRONMENTS / f"Pulumi.{stack}.yaml")
    for item in group:
        config_set(values, item.key, item.value, secret=item.secret)
    merged = merge_config(stack, PROJECT, values)
    config = {key.split(":", 1)[1]: safe_yaml.load(v.text) if v.object else v.text for key, v in merged.items()}
    run = run_program(stack, config)
    releases = [r for r in run.of_type(RELEASE) if r.name == "tabjob"]
    if merged["tabjob:imageDigest"].text:
        (release,) = releases
        assert release.inputs["values"]["image"]["digest"] == DIGEST
        assert release.inputs["values"]["gpuImage"]["digest"] == GPU_DIGEST
    else:
        assert merged["tabjob:bootstrap"].text == "true"
        assert releases == [], "a bootstrap declares no release, so it cannot deploy a tag CI never pushed"
