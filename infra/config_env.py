"""What the program reads from the process environment rather than from stack config.

Only the kind stack does: `task dev` (Taskfile.yml) hands `pulumi up` the ID of the tabjob:dev
image it built (`docker build --iidfile`) and the absolute path of its `docker save` archive.
They change with every build and belong to no file in git, so they are not `tabjob:` keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from infra.config_keys import DIGEST_PATTERN

KIND_IMAGE_ID_ENV = "TABJOB_KIND_IMAGE_ID"
KIND_IMAGE_ARCHIVE_ENV = "TABJOB_KIND_IMAGE_ARCHIVE"


def kind_image(environ: Mapping[str, str]) -> tuple[str, str]:
    """(image ID, archive path) from `task dev`'s environment, or a ValueError saying what to run."""
    image_id = environ.get(KIND_IMAGE_ID_ENV, "").strip()
    archive = environ.get(KIND_IMAGE_ARCHIVE_ENV, "").strip()
    run_task = (
        "The kind stack deploys the image `task dev` builds: run `uv run task dev` (it builds tabjob:dev, "
        "saves it and runs `pulumi up` with both set), not `pulumi up` alone."
    )
    if not image_id or not archive:
        raise ValueError(f"{KIND_IMAGE_ID_ENV} and {KIND_IMAGE_ARCHIVE_ENV} must both be set. {run_task}")
    if not DIGEST_PATTERN.match(image_id):
        raise ValueError(f"{KIND_IMAGE_ID_ENV} must look like sha256:<64 hex digits>; got {image_id!r}. {run_task}")
    if not Path(archive).is_absolute() or not Path(archive).is_file():
        raise ValueError(
            f"{KIND_IMAGE_ARCHIVE_ENV} must be the absolute path of an image archive; {archive!r} is not. {run_task}"
        )
    return image_id, archive
