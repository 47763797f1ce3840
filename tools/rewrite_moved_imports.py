"""Rewrite imports of engine modules that moved (issue 26, "rooms"): for merging a branch written before the moves.

    python tools/rewrite_moved_imports.py            # the moves of the rooms branch (MOVES below)
    python tools/rewrite_moved_imports.py OLD=NEW ...  # others, dotted: engine.share=engine.hosting.share

Rewrites, in the tracked text files of engine/, ui/, app_pages/, tests/, tools/ and docs/ (never README.md):
``from engine import a, old, b`` lists (the moved name gets its own ``from engine.pkg import ...`` line, under
its old name), ``from engine.old import x``, dotted mentions (``engine.old.func``, monkeypatch strings,
docstrings) and paths (``engine/old.py``). ``from engine.pkg import old`` with a package other than
``engine`` is not rewritten: grep for it. Run ``ruff check .`` and the architecture tests afterwards.
"""

from __future__ import annotations

import re
import subprocess
import sys

MOVES = {
    "engine.bench_cli": "engine.bench.cli",
    "engine.import_bench": "engine.bench.import_bench",
    "engine.training.bench": "engine.bench.arm",
    "engine.compare_cli": "engine.compare.cli",
    "engine.curation": "engine.compare.curation",
    "engine.share_cli": "engine.hosting.cli",
    "engine.share": "engine.hosting.share",
    "engine.demo": "engine.hosting.demo",
    "engine.devices": "engine.machine.devices",
    "engine.memory": "engine.machine.memory",
    "engine.execution": "engine.machine.execution",
    "engine.checkpoints": "engine.weights.checkpoints",
    "engine.warm_start": "engine.weights.warm_start",
}

moves = dict(arg.split("=") for arg in sys.argv[1:]) or MOVES
files = subprocess.run(["git", "ls-files", "engine", "ui", "app_pages", "tests", "tools", "docs", "streamlit_app.py",
                        "pyproject.toml", ".ci", "pytest.ini", "conftest.py"],
                       capture_output=True, text=True, check=True).stdout.split()
changed = []
for path in files:
    if not path.endswith((".py", ".md", ".toml", ".ini", ".cfg", ".txt", ".sh")) and not path.startswith(".ci"):
        continue
    try:
        text = open(path, encoding="utf-8").read()
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        continue
    new = text
    for old, target in moves.items():
        old_short = old.rpartition(".")[2]
        new_pkg, _, new_short = target.rpartition(".")
        # from engine import a, old, b  ->  from engine import a, b \n from engine.pkg import new_short[ as old_short]
        def fix_list(m):
            indent, names, tail = m.group(1), m.group(2), m.group(3)
            items = [n.strip() for n in names.split(",") if n.strip()]
            plain = [n.split(" as ")[0].strip() for n in items]
            if old_short not in plain:
                return m.group(0)
            idx = plain.index(old_short)
            item = items.pop(idx)
            alias = item.split(" as ")[1].strip() if " as " in item else old_short
            spec = new_short if alias == new_short else f"{new_short} as {alias}"
            line = f"{indent}from {new_pkg} import {spec}"
            if items:
                return f"{indent}from engine import {', '.join(items)}{tail}\n{line}"
            return line + tail
        if old.count(".") == 1:
            new = re.sub(r"^([ \t]*)from engine import ([A-Za-z_][A-Za-z_0-9, ]*?)([ \t]*(?:#[^\n]*)?)$", fix_list,
                         new, flags=re.M)
        # dotted mentions: engine.old (not engine.old_something)
        new = re.sub(rf"(?<![\w.]){re.escape(old)}(?![\w])", target, new)
        # path mentions engine/old.py
        new = new.replace(old.replace(".", "/") + ".py", target.replace(".", "/") + ".py")
    if new != text:
        open(path, "w", encoding="utf-8").write(new)
        changed.append(path)
print("\n".join(changed) or "nothing to rewrite")
