"""A fake model description and a text reader for the dashboard tests (no worker, no TensorFlow).

The fake runs themselves come from the one run factory, tests/fake_runs.py.
"""

from __future__ import annotations

from ui.text import unescape_markdown

FAKE_DESCRIPTION = {
    "architecture": "tutorial3d",
    "params": 1_234_567,
    "trainable_params": 1_234_567,
    "layers": [
        {"name": "input", "type": "InputLayer", "output_shape": [None, 12, 12, 12, 1], "params": 0},
        {"name": "block1_conv", "type": "Conv3D", "output_shape": [None, 10, 10, 10, 32], "params": 896},
        {"name": "output", "type": "Dense", "output_shape": [None, 1], "params": 257},
    ],
    "activation_bytes_per_sample": 200_000,
    "estimated_training_bytes": 50_000_000,
}


def texts(at) -> str:
    """Everything the page wrote as text (Markdown escapes removed, as a reader sees it), for loose assertions."""
    parts = [element.value for kind in ("title", "markdown", "caption", "info", "error", "warning", "success")
             for element in getattr(at, kind)]
    return "\n".join(unescape_markdown(str(part)) for part in parts)
