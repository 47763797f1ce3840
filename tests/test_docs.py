"""The README and docs/ pages: every relative link and image resolves, and CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
README_LINES = 160


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "data" / "README.md"]


def _relative_links(document: Path) -> list[str]:
    text = document.read_text(encoding="utf-8")
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target) and not target.startswith("#")]


def test_every_relative_link_resolves():
    broken = []
    for document in _documents():
        for target in _relative_links(document):
            path = (document.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                broken.append(f"{document.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_the_link_check_sees_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[there](missing.md) and ![a picture](img/a.png) and [web](https://example.org)\n")
    assert _relative_links(page) == ["missing.md", "img/a.png"]


def test_the_readme_is_short_and_ci_runs_its_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= README_LINES
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    assert blocks[0].startswith("python3 -m venv"), "the virtual environment comes first"
    test_command = blocks[2].strip()
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "DESIGN.md" not in readme
