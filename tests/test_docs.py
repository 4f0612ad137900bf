"""The README stays short, every link between the pages leads somewhere, no sentence is
said twice, and CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
PAGES = [README, ROOT / "CHANGELOG.md", ROOT / "benchmarks" / "README.md",
         *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)


def anchor(heading: str) -> str:
    """The anchor a markdown renderer gives a heading, as GitHub makes it."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {anchor(h) for h in HEADING.findall(FENCE.sub("", page.read_text()))}


def test_the_readme_is_at_most_300_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= 300, f"README.md has {lines} lines; move detail to a page in docs/."


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page):
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # http(s) and mail addresses are not the pages' own
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{page.relative_to(ROOT)} has broken links: {broken}"


def test_no_sentence_is_said_twice_across_the_readme_and_docs():
    seen: dict[str, str] = {}
    twice = []
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        prose = "\n".join(line for line in FENCE.sub("", page.read_text()).splitlines()
                          if not line.startswith("|"))  # table rows may repeat a cell
        for sentence in re.split(r"(?<=[.:;!?])\s+", " ".join(prose.split())):
            if len(sentence) > 50:
                if sentence in seen:
                    twice.append(f"{seen[sentence]} and {page.name}: {sentence}")
                seen.setdefault(sentence, page.name)
    assert not twice, "say each fact on one page and link to it:\n" + "\n".join(twice)


def test_ci_runs_exactly_the_readme_s_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = next(line for line in readme.splitlines()
                   if line.startswith("{ command -v redis-server"))
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci[-1] == command
