"""docs/configuration.md is generated from the Settings field descriptions and must match them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from app.core import settings_docs
from app.core.settings import Settings
from app.core.settings_docs import DOC_PATH, REGENERATE_COMMAND, missing_descriptions, render_document, render_table


def test_configuration_md_is_what_the_generator_writes() -> None:
    current = DOC_PATH.read_text()
    assert render_document(current) == current, (
        f"{DOC_PATH} is out of date with app/core/settings.py; regenerate it with: {REGENERATE_COMMAND}"
    )


def test_every_setting_has_a_description() -> None:
    missing = missing_descriptions()
    assert missing == [], f"add description= to these fields of app/core/settings.py Settings: {missing}"


def test_a_field_without_a_description_is_reported() -> None:
    class Undocumented(Settings):
        new_knob: int = Field(3, ge=1)

    assert missing_descriptions(Undocumented) == ["new_knob"]


def test_the_table_has_one_row_per_setting_with_its_real_default_and_bounds() -> None:
    rows = {line.split(" | ")[0].strip("| `"): line for line in render_table().splitlines()[2:]}
    assert set(rows) == {f"TABJOB_{name.upper()}" for name in Settings.model_fields}
    # Required settings say so; bounds and defaults are read from the fields, with a readable unit.
    assert "**required**" in rows["TABJOB_REDIS_URL"]
    assert "| `3600` (1 h) | ≥ 60, ≤ 604800 |" in rows["TABJOB_PRESIGN_EXPIRY_S"]
    assert "`2147483648` (2 GiB)" in rows["TABJOB_MAX_DATASET_BYTES"]
    assert "secret string (optional) | unset" in rows["TABJOB_REDIS_PASSWORD"]
    assert "`local` \\| `dev` \\| `staging` \\| `production`" in rows["TABJOB_ENVIRONMENT"]
    assert "| `true` |" in rows["TABJOB_AUTH_ENABLED"]


def test_check_mode_refuses_a_stale_file_and_the_generator_repairs_it(tmp_path: Path) -> None:
    # Given a copy of the document whose table lost a row
    stale = tmp_path / "configuration.md"
    current = DOC_PATH.read_text()
    stale.write_text("\n".join(line for line in current.splitlines() if "TABJOB_S3_REGION" not in line) + "\n")

    # When checked, it is refused with the command that fixes it, and nothing is written
    with pytest.raises(SystemExit, match=REGENERATE_COMMAND.replace(".", r"\.")):
        settings_docs.main(["--check", "--path", str(stale)])
    assert "TABJOB_S3_REGION" not in stale.read_text()

    # When regenerated, it is the committed document again and passes the check
    assert settings_docs.main(["--path", str(stale)]) == 0
    assert stale.read_text() == current
    assert settings_docs.main(["--check", "--path", str(stale)]) == 0


def test_a_document_without_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="BEGIN GENERATED SETTINGS TABLE"):
        render_document("# Configuration\n\nno table here\n")
