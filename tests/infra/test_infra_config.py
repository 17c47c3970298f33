"""Stack configuration: validation errors, and Pulumi.yaml's schema against the code and stacks."""

from __future__ import annotations

import re

import pulumi
import pytest
import safe_yaml
from infra_harness import ENVIRONMENTS, EXISTING_CONFIG, ROOT, configure, kind_image_environ, stack_config
from pulumi_cli import PulumiConfigError

from infra.config import DEFAULTS, SECRET_KEYS, load_config

PULUMI_YAML = safe_yaml.load((ROOT / "Pulumi.yaml").read_text())
SCHEMA = PULUMI_YAML["config"]
GKE = {"cluster": "gke", "gcpProject": "p", "apiHost": "api.example.com"}
PULUMI_TYPES = {str: "string", bool: "boolean", int: "integer", list: "array", dict: "object"}


def _load(stack: str, config: dict, environ: dict | None = None):
    """load_config() for `stack` with exactly `config` set (and `task dev`'s kind image variables)."""
    configure(stack, config)
    return load_config(environ=kind_image_environ() if environ is None else environ)


# ---- Pulumi.yaml


def test_pulumi_yaml_runs_infra_with_uv_and_environments_as_stack_config():
    assert PULUMI_YAML["name"] == "tabjob"
    assert PULUMI_YAML["runtime"] == {"name": "python", "options": {"toolchain": "uv"}}
    assert PULUMI_YAML["main"] == "infra/"
    assert PULUMI_YAML["stackConfigDir"] == "environments"
    assert (ROOT / "infra" / "__main__.py").is_file()


def test_every_key_the_program_reads_is_declared_with_a_description():
    assert set(SCHEMA) == set(DEFAULTS), "Pulumi.yaml config and infra/config.py DEFAULTS differ"
    for key, declaration in SCHEMA.items():
        assert declaration.get("description", "").strip(), f"{key} has no description"
        assert declaration.get("type") in PULUMI_TYPES.values(), key


def test_declared_defaults_are_the_code_defaults():
    # The CLI merges every declared default into the program's config (pulumi_cli.merge_config):
    # a key the code derives or requires is declared with the value the Reader reads as unset.
    for key, default in DEFAULTS.items():
        declaration = SCHEMA[key]
        assert "default" in declaration, f"{key}: without a default the CLI refuses every stack that leaves it unset"
        if default is None:
            assert declaration["type"] == "string" and declaration["default"] == "", key
        else:
            assert declaration["default"] == default, key
            assert declaration["type"] == PULUMI_TYPES[type(default)], key


@pytest.mark.parametrize("key", sorted(SECRET_KEYS & set(EXISTING_CONFIG)))
def test_secret_keys_are_not_declared_secret_and_plain_values_are_refused(key):
    # `secret: true` makes a key required, encrypted, on every stack (validateStackConfigValue
    # checks the merged default too), so the program checks what the CLI cannot.
    assert not SCHEMA[key].get("secret")
    configure("production", EXISTING_CONFIG, cli=False)
    pulumi.runtime.set_all_config(
        {f"tabjob:{k}": str(v) for k, v in EXISTING_CONFIG.items()},
        secret_keys=[f"tabjob:{k}" for k in SECRET_KEYS if k != key],
    )
    with pytest.raises(ValueError, match=f"tabjob:{key} is stored in plain text.*--secret"):
        load_config()


def test_stacks_dev_staging_production_exist_and_use_only_declared_keys():
    stacks = {path.name for path in ENVIRONMENTS.glob("Pulumi.*.yaml")}
    assert {"Pulumi.dev.yaml", "Pulumi.staging.yaml", "Pulumi.production.yaml"} <= stacks
    for path in ENVIRONMENTS.glob("Pulumi.*.yaml"):
        for full_key in safe_yaml.load(path.read_text())["config"]:
            namespace, key = full_key.split(":", 1)
            assert namespace == "tabjob" and key in SCHEMA, f"{path.name}: {full_key}"


# ---- loading


def test_stack_files_load_into_the_intended_cluster_kinds():
    kinds = {stack: _load(stack, stack_config(stack)).cluster for stack in ("dev", "staging", "production")}
    assert kinds == {"dev": "kind", "staging": "gke", "production": "gke"}


def test_defaults_apply_when_keys_are_unset():
    cfg = _load("dev", {})
    assert cfg.cluster == "kind"
    assert cfg.environment == "dev", "the stack name"
    assert cfg.keda_version == DEFAULTS["kedaVersion"]
    assert cfg.kind is not None and cfg.kind.api_host_port == 8000
    assert cfg.gke is None and cfg.existing is None


def test_deletion_protection_is_on_unless_a_stack_turns_it_off():
    assert _load("production", GKE).gke.deletion_protection is True
    assert _load("staging", GKE).gke.deletion_protection is True
    assert _load("staging", {**GKE, "deletionProtection": False}).gke.deletion_protection is False
    assert _load("staging", stack_config("staging")).gke.deletion_protection is False


def test_config_is_frozen():
    cfg = _load("dev", {})
    with pytest.raises(AttributeError):
        cfg.cluster = "gke"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("stack", "config", "message"),
    [
        ("dev", {"cluster": "eks"}, "kind, gke, existing"),
        ("qa", {}, "tabjob:environment must be one of dev, staging, production"),
        ("dev", {"imageDigest": "latest"}, "sha256:<64 hex digits>"),
        ("dev", {"kedaVersion": "2.19.0"}, "2.20.x"),
        # Refused by the CLI's type check before the program runs (pulumi_cli.merge_config).
        ("dev", {"installKeda": "yes"}, "key 'installKeda' must be of type 'boolean'"),
        ("dev", {"apiHostPort": "eighty"}, "key 'apiHostPort' must be of type 'integer'"),
        ("dev", {"apiHostPort": 8333}, "must differ"),
        ("staging", {"cluster": "gke", "apiHost": "a.example"}, "tabjob:gcpProject is required"),
        ("staging", {"cluster": "gke", "gcpProject": "p"}, "tabjob:apiHost"),
        ("staging", {**GKE, "gpuDriverVersion": "NEWEST"}, "LATEST, DEFAULT"),
        ("staging", {**GKE, "releaseChannel": "BETA"}, "RAPID, REGULAR, STABLE"),
        ("staging", {**GKE, "valkeyNodeType": "BIG"}, "SHARED_CORE_NANO"),
        ("staging", {**GKE, "gpuMaxNodes": 0}, ">= 1"),
        ("staging", {**GKE, "cpuMinNodes": 5, "cpuMaxNodes": 2}, "must not exceed"),
        ("staging", {**GKE, "expiringSuffixes": ".parquet"}, "must be of type 'array<string>'"),
        ("staging", {**GKE, "expiringSuffixes": [""]}, "list of non-empty strings"),
        ("production", {"cluster": "existing"}, "tabjob:image is required"),
        ("production", {"cluster": "existing", "image": "r/tabjob"}, "tabjob:kubeconfig"),
        ("production", {**EXISTING_CONFIG, "redisUrl": "http://x"}, "redis:// or rediss://"),
    ],
)
def test_invalid_config_raises_value_error_naming_what_is_allowed(stack, config, message):
    with pytest.raises((ValueError, PulumiConfigError), match=re.escape(message)):
        _load(stack, config)
