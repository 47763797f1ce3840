"""The dashboard process never imports TensorFlow or Keras (checked in a fresh interpreter).

The test suite itself imports Keras elsewhere, so the pages are driven with
AppTest in a child process that reports what ended up in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    from engine import probe
    from engine.store import open_store
    from streamlit.testing.v1 import AppTest
    from fake_lab import FAKE_DESCRIPTION
    from tests.fake_runs import fake_run

    # The real probe runs TensorFlow in a grandchild process, which is allowed; keep this quick.
    probe.describe_model = lambda model, shape, classes, batch=32: dict(FAKE_DESCRIPTION)
    store = open_store()
    ids = [fake_run(store, status, epochs_done=2, error="boom" if status == "failed" else None)
           for status in ("finished", "running", "failed", "stopped")]
    at = AppTest.from_file({app!r}, default_timeout=60).run()
    exceptions = [e.value for e in at.exception]
    pages = [at.title[0].value]
    for page in ("app_pages/train.py", "app_pages/data.py", "app_pages/runs.py", "app_pages/inspect.py",
                 "app_pages/compare.py", "app_pages/predict.py"):
        try:
            at.switch_page(page)
        except ValueError:
            continue  # a page that is not written yet
        at.query_params["runs"] = ",".join(map(str, ids))
        at.run()
        exceptions += [e.value for e in at.exception]
        pages.append(at.title[0].value if at.title else page)
    print(json.dumps({{
        "pages": pages,
        "exceptions": exceptions,
        "imported": sorted(m for m in ("tensorflow", "keras", "tf_keras") if m in sys.modules),
    }}))
    """
)


def test_no_page_imports_tensorflow_or_keras(lab_home):
    script = SCRIPT.format(root=str(REPO_ROOT), tests=str(REPO_ROOT / "tests" / "dashboard"),
                           app=str(REPO_ROOT / "streamlit_app.py"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"\npages run in a fresh interpreter: {report['pages']}")
    assert {"Conv3D Lab", "Train", "Data", "Runs", "Compare runs"} <= set(report["pages"])
    assert report["exceptions"] == []
    assert report["imported"] == [], f"the dashboard imported {report['imported']}"
