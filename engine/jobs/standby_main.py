"""``python -m engine.jobs.standby_main SLOT``: the warm standby process (see engine/jobs/standby.py).

A module of its own, so ``engine.jobs.standby`` (imported by the package) is not also run as ``__main__``.
"""

import sys

from engine.jobs.standby import main

if __name__ == "__main__":
    sys.exit(main())
