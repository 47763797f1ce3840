"""One word per concept in what a person reads (docs/glossary.md): the pages' and widgets' strings.

Reads every string literal of app_pages/ and ui/ with ``ast`` (f-string parts included), leaving out
docstrings and widget keys, and fails on a synonym the glossary retired, naming the word to use.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# (retired wording, the glossary's word). Precise phrases, so code identifiers and the allowed senses
# ("a knob" of a model or training config, "the preset's value" of a field) never match.
RETIRED = [
    (re.compile(r"\bdemo runs?\b", re.I), "sample run (the Home page's one-click run; 'demo' is the hosted mode)"),
    (re.compile(r"\bdataset(?:'s)? knobs?\b|\bknobs? of (?:a|an|the|this|that) (?:built-in |imported )?dataset\b"
                r"|\b(?:generator|reader|size) knobs?\b", re.I), "option (a dataset's generator or reader setting)"),
    (re.compile(r"\b(?:a|the|this|that|each|smaller|larger|deep|deeper) presets?\b(?!['\u2019]s|\s+value)"
                r"|\bpresets\b|\barchitecture presets?\b", re.I), "architecture (a built-in network)"),
]


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _keys(tree: ast.AST) -> set[int]:
    """String parts of ``key=...`` arguments (widget keys are identifiers, not text)."""
    return {id(part) for node in ast.walk(tree) if isinstance(node, ast.keyword) and node.arg == "key"
            for part in ast.walk(node.value)}


def retired_words(source: str) -> list[tuple[int, str, str]]:
    """(line, the string, the word to use) for each user-facing string literal with a retired synonym."""
    tree = ast.parse(source)
    skipped = _docstrings(tree) | _keys(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
            for pattern, word in RETIRED:
                if pattern.search(node.value):
                    found.append((node.lineno, node.value, word))
    return found


def test_the_checker_finds_a_retired_word_and_leaves_identifiers_docstrings_and_allowed_senses_alone():
    source = '''
def page():
    """The preset's docstring may say demo run."""
    st.button("Start the demo run", key="home_demo_run")
    st.caption(f"{name} is not a knob of the dataset")
    st.help(f"The preset uses {value}.")
    st.text("Dropout, L2 and other knobs; a value the preset's builder decides is marked (preset).")
    key = f"train_knob_{arch}"
'''
    words = [word.split()[0] for _, _, word in retired_words(source)]
    assert words == ["sample", "option", "architecture"]


def test_pages_and_widgets_use_one_word_per_concept():
    problems = []
    for path in sorted([*(REPO_ROOT / "app_pages").rglob("*.py"), *(REPO_ROOT / "ui").rglob("*.py")]):
        for line, text, word in retired_words(path.read_text()):
            problems.append(f"{path.relative_to(REPO_ROOT)}:{line}: {text[:80]!r}: say {word}")
    assert not problems, "\n".join(problems)
