"""The doctor's fixes: a remedy per finding (``catalogue``) and its verification as paired runs (``pairing``).

``python -m engine fix RUN FINDING_ID`` and the Inspect page's Apply action both call
``pairing.launch_fix``; ``pairing.fix_report`` says whether the fix helped, with its interval.
"""

from __future__ import annotations

from engine.remedies.catalogue import REMEDIES, Change, Prescription, Remedy, fixable, prescribe, remedies_for

__all__ = ["REMEDIES", "Change", "Prescription", "Remedy", "fixable", "prescribe", "remedies_for"]
