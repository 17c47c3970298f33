"""Run the Pulumi program under mocks and record the resource graph it declares.

Imported by tests/infra/conftest.py and the tests (tests/infra is on sys.path under pytest).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_cli
import yaml
from pulumi.runtime.mocks import MockMonitor

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ROOT / "environments"
DIGEST = "sha256:" + "a" * 64
GPU_DIGEST = "sha256:" + "b" * 64
FAKE_KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n"
KIND_IMAGE_ID = "sha256:" + "c" * 64


def kind_image_environ(image_id: str = KIND_IMAGE_ID) -> dict[str, str]:
    """What `task dev` hands `pulumi up` on the kind stack: the built image's ID and the absolute
    path of its `docker save` archive (an empty file here: only the load command reads it)."""
    archive = Path(tempfile.gettempdir()) / "tabjob-infra-tests" / "image.tar"
    archive.parent.mkdir(exist_ok=True)
    archive.touch()
    return {"TABJOB_KIND_IMAGE_ID": image_id, "TABJOB_KIND_IMAGE_ARCHIVE": str(archive)}


@dataclass
class Declared:
    """One resource the program declared: its type token, logical name, inputs, provider."""

    typ: str
    name: str
    inputs: dict[str, Any]
    provider: str | None
    secret_inputs: bool = False  # any input was a secret


@dataclass
class StackRun:
    resources: list[Declared]
    outputs: dict[str, Any] = field(default_factory=dict)
    # URN of each resource to the URNs it waits for (depends_on and data dependencies alike,
    # components expanded to their resources, as the engine receives them).
    dependencies: dict[str, set[str]] = field(default_factory=dict)
    delete_before_replace: set[str] = field(default_factory=set)

    def urn(self, typ: str, name: str) -> str:
        found = [urn for urn in self.dependencies if urn.endswith(f"::{name}") and f"{typ}::" in urn]
        assert len(found) == 1, f"expected one URN for {typ} {name}, got {found}"
        return found[0]

    def waits_for(self, typ: str, name: str, on_typ: str, on_name: str) -> bool:
        """True when resource (typ, name) depends on (on_typ, on_name)."""
        return self.urn(on_typ, on_name) in self.dependencies[self.urn(typ, name)]

    def of_type(self, typ: str) -> list[Declared]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name: str | None = None) -> Declared:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {typ} {name or ''}, got {[r.name for r in found]}"
        return found[0]

    def types(self) -> set[str]:
        return {r.typ for r in self.resources}


# The secret GCS hands back for a new HMAC key; a test rotates it by changing this.
MOCK_HMAC_SECRET = ["hmac-secret"]


def _outputs_for(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """What the cloud would report back for the few outputs the program reads."""
    extra: dict[str, Any] = {}
    if typ == "command:local:Command":
        extra["stdout"] = FAKE_KUBECONFIG if "kubeconfig" in name else ""
    elif typ == "random:index/randomPassword:RandomPassword":
        extra["result"] = f"{name}-generated"
    elif typ == "random:index/randomId:RandomId":
        extra["hex"] = "0123456789ab"
    elif typ == "gcp:serviceaccount/account:Account":
        email = f"{inputs['accountId']}@project.iam.gserviceaccount.com"
        extra.update(email=email, member=f"serviceAccount:{email}", name=f"projects/p/{email}")
    elif typ == "gcp:container/cluster:Cluster":
        extra.update(name=name, endpoint="203.0.113.10", masterAuth={"clusterCaCertificate": "Q0E="})
    elif typ == "gcp:storage/bucket:Bucket":
        extra["name"] = f"{name}-0123abc"
    elif typ == "gcp:storage/hmacKey:HmacKey":
        extra.update(accessId="GOOG1EXAMPLE", secret=MOCK_HMAC_SECRET[0])
    elif typ == "gcp:memorystore/instance:Instance":
        psc = {"connectionType": "CONNECTION_TYPE_PRIMARY", "ipAddress": "10.10.0.5", "port": 6379}
        extra["endpoints"] = [{"connections": [{"pscAutoConnection": psc}]}]
    elif typ == "gcp:compute/globalAddress:GlobalAddress":
        extra.update(name=f"{name}-addr", address="198.51.100.7")
    elif typ.startswith("kubernetes:") and "metadata" in inputs:
        metadata = dict(inputs.get("metadata") or {})
        metadata.setdefault("name", f"{name}-generated")
        extra["metadata"] = metadata
    return extra


# How the SDK marks a secret value on the wire (a dict with this signature key).
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"


def reveal(value: Any, found: list[bool] | None = None) -> Any:
    """`value` with secret wrappers removed; appends True to `found` for each one removed."""
    if isinstance(value, dict):
        if SECRET_SIGNATURE in value:
            if found is not None:
                found.append(True)
            return reveal(value.get("value"), found)
        return {k: reveal(v, found) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v, found) for v in value]
    return value


class RecordingMonitor(MockMonitor):
    """The mock engine, also recording what each resource registration depends on."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.dependencies: dict[str, set[str]] = {}
        # URNs registered with delete_before_replace.
        self.delete_before_replace: set[str] = set()

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.deleteBeforeReplace:
            self.delete_before_replace.add(response.urn)
        waits = set(request.dependencies)
        for deps in request.propertyDependencies.values():
            waits.update(deps.urns)
        self.dependencies[response.urn] = waits
        return response


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[Declared] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        found: list[bool] = []
        inputs = reveal(dict(args.inputs), found)
        self.resources.append(Declared(args.typ, args.name, inputs, args.provider, bool(found)))
        outputs = dict(args.inputs)
        outputs.update(_outputs_for(args.typ, args.name, inputs))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {}


def stack_config(stack: str) -> dict[str, Any]:
    """The `tabjob:` config of environments/Pulumi.<stack>.yaml, keys without namespace."""
    data = yaml.safe_load((ENVIRONMENTS / f"Pulumi.{stack}.yaml").read_text())
    return {key.split(":", 1)[1]: value for key, value in data["config"].items()}


def _as_engine_string(value: Any) -> str:
    # The engine hands the program every config value as a string; objects as JSON.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


PROJECT = pulumi_cli.load_project(ROOT / "Pulumi.yaml")


def cli_config(stack: str, config: Mapping[str, Any]) -> dict[str, pulumi_cli.ConfigValue]:
    """What the Pulumi CLI hands the program for a stack whose file sets exactly ``config``
    (keys without namespace; the secret keys as `--secret` values): Pulumi.yaml's defaults merged
    in, types checked. Raises pulumi_cli.PulumiConfigError where the CLI would stop."""
    from infra.config import SECRET_KEYS

    values = {
        f"tabjob:{key}": pulumi_cli.ConfigValue(
            _as_engine_string(value), secure=key in SECRET_KEYS, object=isinstance(value, (list, dict))
        )
        for key, value in config.items()
    }
    return pulumi_cli.merge_config(stack, PROJECT, values)


def configure(stack: str, config: Mapping[str, Any], *, cli: bool = True) -> RecordingMocks:
    """Point the Pulumi runtime at fresh mocks for `stack` whose stack file sets `config`.

    With `cli` (the default) the program gets what the Pulumi CLI would give it (cli_config):
    Pulumi.yaml's defaults merged in, and a PulumiConfigError where the CLI stops. Without,
    exactly `config` (to compare the code's own defaults with the merged ones).
    """
    from infra.config import SECRET_KEYS

    # Pulumi's mocks take the thread's current event loop; an earlier test's asyncio.run() leaves
    # the main thread with none (asyncio.run closes its loop and sets None), and Python 3.11's
    # get_event_loop() then raises instead of making one.
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = RecordingMocks()
    mocks.monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="tabjob", stack=stack, preview=False, monitor=mocks.monitor)
    if cli:
        values, secret_keys = pulumi_cli.engine_config(cli_config(stack, config))
    else:
        values = {f"tabjob:{key}": _as_engine_string(value) for key, value in config.items()}
        secret_keys = [f"tabjob:{key}" for key in SECRET_KEYS if key in config]
    pulumi.runtime.set_all_config(values, secret_keys=secret_keys)
    return mocks


def run_program(stack: str, config: dict[str, Any], environ: Mapping[str, str] | None = None) -> StackRun:
    """Declare the stack's resources under mocks; raises what the program raises.

    `environ` is the process environment the program sees (default: `task dev`'s kind image
    variables, which only the kind stack reads).
    """
    from infra.config import load_config
    from infra.program import build

    mocks = configure(stack, config)
    run = StackRun(
        resources=mocks.resources,
        dependencies=mocks.monitor.dependencies,
        delete_before_replace=mocks.monitor.delete_before_replace,
    )
    environ = kind_image_environ() if environ is None else environ

    @pulumi.runtime.test
    def program() -> pulumi.Output:
        outputs = build(load_config(environ=environ))
        return pulumi.Output.all(**outputs).apply(run.outputs.update)

    program()
    return run


EXISTING_CONFIG = {
    "cluster": "existing",
    "environment": "production",
    "kubeconfig": FAKE_KUBECONFIG,
    "image": "registry.example.com/acme/tabjob",
    "imageDigest": DIGEST,
    "redisUrl": "rediss://valkey.acme.internal:6380/0",
    "redisPassword": "broker-password",
    "s3Endpoint": "https://minio.acme.internal",
    "s3PublicEndpoint": "https://s3.acme.example.com",
    "s3Bucket": "tabjob",
    "s3AccessKey": "access",
    "s3SecretKey": "secret",
    "apiHost": "tabjob.acme.example.com",
}
