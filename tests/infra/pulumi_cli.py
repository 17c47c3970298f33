"""The Pulumi CLI's project-configuration rules, as `pulumi preview`, `up` and `destroy` apply them
before the program runs. Our program tests run under mocks, which skip the CLI; this module does
what the CLI does, so a stack the CLI refuses is refused here too, and the program sees exactly
the merged configuration the CLI hands it.

Ported from pulumi/pulumi at 1b5949891b3cefcb9974752b24a5ecef0acc86c8 (2026-08-21):

- ``sdk/go/common/workspace/project.json``: the JSON schema every Pulumi.yaml is validated
  against on load (vendored as pulumi_schema/project.json, Apache-2.0).
- ``sdk/go/common/workspace/project.go``: ``RewriteShorthandConfigValues`` (a bare value is a
  ``default`` for project keys, a ``value`` for other namespaces), ``Project.Validate`` and
  ``ValidateConfigValue`` (the types string, integer, boolean, object and array with ``items``).
- ``pkg/workspace/config.go`` (formerly ``sdk/go/common/workspace/config.go``): ``mergeConfig``,
  ``ValidateStackConfigAndApplyProjectConfig``. A project key (``x`` or ``tabjob:x``) with neither
  ``default`` nor ``value`` that the stack does not set stops every preview, up and destroy with
  "Stack '<stack>' is missing configuration values ..." (pulumi/pulumi#21797); a ``default`` or
  ``value`` is merged into the stack's config before the program runs; then each typed key's
  merged value is type-checked, and a ``secret: true`` key must hold an encrypted value.
- ``sdk/go/common/resource/config/object.go`` (``MarshalString``): a stack file's YAML scalar
  reaches the program as text (``true``, ``3``), a list or map as JSON.
- ``pkg/cmd/pulumi/config/config.go``: ``pulumi config set KEY VALUE`` stores VALUE as a plain
  string (``NewTypedValue(value, TypeUnknown)``), ``--secret`` encrypts it, and a key matching
  ``keyPattern`` is refused without ``--secret``/``--plaintext`` when the value looks random.

Docs: https://www.pulumi.com/docs/iac/concepts/projects/project-file/ (config: type, default,
value, secret, items).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent / "pulumi_schema" / "project.json"
# config.go keyPattern: keys whose plain `pulumi config set` value is entropy-checked.
SECRET_LOOKING_KEY = re.compile(r"(?i)passwd|pass|password|pwd|secret|token")
_GO_ATOI = re.compile(r"[+-]?[0-9]+")


class PulumiConfigError(Exception):
    """What the CLI prints before it stops, without running the program."""


@dataclass(frozen=True)
class ConfigValue:
    """config.Value: its text, whether it is encrypted (secure) and whether it is JSON (object)."""

    text: str
    secure: bool = False
    object: bool = False


@dataclass(frozen=True)
class ConfigType:
    """workspace.ProjectConfigType."""

    type: str | None = None
    items: dict[str, Any] | None = None
    default: Any = None
    value: Any = None
    secret: bool = False
    description: str = ""


@dataclass
class Project:
    name: str
    config: dict[str, ConfigType] = field(default_factory=dict)


def _is_primitive(value: Any) -> bool:
    # isPrimitiveValue: Go's string, int and bool (a YAML float is none of them).
    return isinstance(value, (str, bool, int)) and not isinstance(value, float)


def _namespaced_by_project(project: str, key: str) -> bool:
    return ":" not in key or key.startswith(f"{project}:")


def load_project(path: Path) -> Project:
    """Read Pulumi.yaml as the CLI does: schema, shorthand rewrite, then Project.Validate."""
    raw = yaml.safe_load(path.read_text())
    schema = json.loads(SCHEMA_PATH.read_text())
    try:
        jsonschema.validate(raw, schema)
    except jsonschema.ValidationError as error:
        raise PulumiConfigError(f"{path.name} does not match the project schema: {error.message}") from None
    name = raw["name"]
    config: dict[str, ConfigType] = {}
    for key, declared in (raw.get("config") or {}).items():
        if _is_primitive(declared) or isinstance(declared, list):  # RewriteShorthandConfigValues
            declared = {"default": declared} if _namespaced_by_project(name, key) else {"value": declared}
        config[key] = ConfigType(
            type=declared.get("type"),
            items=declared.get("items"),
            default=declared.get("default"),
            value=declared.get("value"),
            secret=bool(declared.get("secret", False)),
            description=declared.get("description", ""),
        )
    project = Project(name=name, config=config)
    _validate_project(project)
    return project


def _validate_project(project: Project) -> None:
    """Project.Validate."""
    for key, ctype in project.config.items():
        if ctype.default is not None and ctype.value is not None:
            raise PulumiConfigError(f"project config '{key}' cannot have both a 'default' and 'value' attribute")
        if _namespaced_by_project(project.name, key):
            if ctype.type == "array" and ctype.items is None:
                raise PulumiConfigError(
                    f"The configuration key '{key}' declares an array but does not specify the underlying type "
                    "via the 'items' attribute"
                )
            typed_default = ctype.type is not None and ctype.default is not None
            if typed_default and not validate_value(ctype.type, ctype.items, ctype.default):
                raise PulumiConfigError(
                    f"The default value specified for configuration key '{key}' is not of the expected type "
                    f"'{full_type_name(ctype.type, ctype.items)}'"
                )
        else:
            if ctype.type is not None:
                raise PulumiConfigError(
                    f"Configuration key '{key}' is not namespaced by the project and should not define a type"
                )
            if ctype.default is not None:
                raise PulumiConfigError(
                    f"Configuration key '{key}' is not namespaced by the project and should not define a default value"
                )
            if ctype.value is None:
                raise PulumiConfigError(
                    f"Configuration key '{key}' is namespaced and must provide an attribute 'value'"
                )


def full_type_name(type_name: str, items: dict[str, Any] | None) -> str:
    """InferFullTypeName."""
    if items is not None:
        return f"array<{full_type_name(items.get('type', ''), items.get('items'))}>"
    return type_name


def validate_value(type_name: str, items: dict[str, Any] | None, value: Any) -> bool:
    """ValidateConfigValue. (Python's bool is an int; Go's is not, hence the bool checks.)"""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        if isinstance(value, float):
            return value == int(value)
        return isinstance(value, str) and _GO_ATOI.fullmatch(value) is not None
    if type_name == "boolean":
        return value in ("true", "false") or isinstance(value, bool)
    if type_name == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or items is None:
        return False
    return all(validate_value(items.get("type", ""), items.get("items"), item) for item in value)


def stack_value(raw: Any) -> ConfigValue:
    """A stack file's YAML value as config.Value (object.go MarshalString)."""
    if isinstance(raw, dict) and set(raw) == {"secure"}:
        return ConfigValue(str(raw["secure"]), secure=True)
    if isinstance(raw, str):
        return ConfigValue(raw)
    if isinstance(raw, (bool, int, float)):
        return ConfigValue(json.dumps(raw))
    return ConfigValue(json.dumps(raw), secure="secure" in json.dumps(raw), object=True)


def _create_config_value(raw: Any) -> ConfigValue:
    """createConfigValue: fmt "%v" of a primitive, JSON of anything else."""
    if isinstance(raw, bool):
        return ConfigValue("true" if raw else "false")
    if _is_primitive(raw):
        return ConfigValue(str(raw))
    return ConfigValue(json.dumps(raw), object=True)


def _full_key(project: str, key: str) -> str:
    """parseConfigKey: a key without a namespace is the project's."""
    return key if ":" in key else f"{project}:{key}"


def _missing_error(stack: str, keys: list[str]) -> PulumiConfigError:
    """missingStackConfigurationKeysError with formatMissingKeys's wording."""
    if len(keys) == 1:
        return PulumiConfigError(f"Stack '{stack}' is missing configuration value '{keys[0]}'")
    keys = sorted(keys)
    listed = "".join(
        f"and '{k}'" if i == len(keys) - 1 else f"'{k}' " if i == len(keys) - 2 else f"'{k}', "
        for i, k in enumerate(keys)
    )
    return PulumiConfigError(f"Stack '{stack}' is missing configuration values {listed}")


def merge_config(stack: str, project: Project, stack_config: dict[str, ConfigValue]) -> dict[str, ConfigValue]:
    """ValidateStackConfigAndApplyProjectConfig: the configuration the program receives.

    ``stack_config`` maps full keys (``tabjob:x``) to values. Raises PulumiConfigError where
    the CLI stops.
    """
    for key in stack_config:
        if "." in key.split(":", 1)[-1] or "[" in key:
            raise NotImplementedError(f"{key}: property-path keys are not modelled here")
    merged = dict(stack_config)
    missing: list[str] = []
    for key in sorted(project.config):
        ctype = project.config[key]
        full = _full_key(project.name, key)
        found = full in merged
        has_default, has_value = ctype.default is not None, ctype.value is not None
        if not found and not has_value and not has_default and full.split(":", 1)[0] == project.name:
            missing.append(key)
            continue
        if not found and (has_value or has_default):
            merged[full] = _create_config_value(ctype.default if has_default else ctype.value)
    if missing:
        raise _missing_error(stack, missing)
    for key in sorted(project.config):  # validateStackConfigValues
        ctype = project.config[key]
        if ctype.type is None:
            continue
        value = merged.get(_full_key(project.name, key), ConfigValue(""))
        if ctype.secret and not value.secure:
            raise PulumiConfigError(f"Stack '{stack}' with configuration key '{key}' must be encrypted as it's secret")
        content: Any = json.loads(value.text) if value.object else value.text
        if not validate_value(ctype.type, ctype.items, content):
            raise PulumiConfigError(
                f"Stack '{stack}' with configuration key '{key}' must be of type "
                f"'{full_type_name(ctype.type, ctype.items)}'"
            )
    return merged


def read_stack_file(path: Path) -> dict[str, ConfigValue]:
    """environments/Pulumi.<stack>.yaml's config block as config values."""
    data = yaml.safe_load(path.read_text()) or {}
    return {key: stack_value(raw) for key, raw in (data.get("config") or {}).items()}


def config_set(config: dict[str, ConfigValue], key: str, value: str, *, secret: bool = False) -> None:
    """`pulumi config set [--secret] KEY VALUE`: a string, encrypted with --secret."""
    config[key] = ConfigValue(value, secure=secret)


def engine_config(merged: dict[str, ConfigValue]) -> tuple[dict[str, str], list[str]]:
    """What the engine hands the language host: every value as text, and the secret keys."""
    return {k: v.text for k, v in merged.items()}, sorted(k for k, v in merged.items() if v.secure)
