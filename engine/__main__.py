"""``python -m engine``: see engine/cli.py."""

import os
import sys

# Keep TensorFlow's C++ start-up chatter out of the CLI's output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from engine.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
