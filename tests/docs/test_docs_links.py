"""Every relative link in README.md, docs/*.md and the chart's README points to a file that
exists, and every ``#anchor`` to a heading that exists (GitHub's anchor rules), so moving text
cannot leave a dead link behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "charts" / "tabjob" / "README.md"]

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def prose(text: str) -> str:
    """``text`` without code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor GitHub makes for the headings of ``path`` (repeats get -1, -2, …)."""
    seen: dict[str, int] = {}
    result = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def relative_links(page: Path) -> list[str]:
    """The links of ``page`` that point into this repository (no scheme, no mail)."""
    return [
        target
        for target in LINK.findall(prose(page.read_text()))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)
    ]


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def broken_links(page: Path) -> list[str]:
    """What is wrong with each relative link of ``page``: a missing file or a missing anchor."""
    problems = []
    for target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.exists():
            problems.append(f"{target}: no file {shown(path)}")
            continue
        if anchor and path.suffix == ".md" and anchor not in anchors(path):
            problems.append(f"{target}: no heading with anchor #{anchor} in {shown(path)}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=shown)
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_checker_finds_missing_files_and_anchors(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## The embedded stack (`tabjob stack`)\n\n"
        "[ok](#the-embedded-stack-tabjob-stack) [bad anchor](#nowhere) [no file](missing.md) "
        "[web](https://example.com) `[not a link](nowhere.md)`\n\n```\n[in code](gone.md)\n```\n"
    )
    assert anchors(page) == {"title", "the-embedded-stack-tabjob-stack"}
    assert relative_links(page) == ["#the-embedded-stack-tabjob-stack", "#nowhere", "missing.md"]
    problems = broken_links(page)
    assert len(problems) == 2
    assert problems[0].startswith("#nowhere: no heading")
    assert problems[1].startswith("missing.md: no file")


def test_the_readme_is_a_front_door() -> None:
    text = (ROOT / "README.md").read_text()
    top_titles = [line for line in FENCE.sub("", text).splitlines() if line.startswith("# ")]
    assert len(text.splitlines()) <= 250
    assert top_titles == ["# tabjob"]
    assert "uv run task demo" in text and "uv run task test" in text
