"""A lab hosted for others: what a demo allows (``demo``: caps and who may change a run) and read-only share
links for visitors who are not signed in (``share``; ``python -m engine share`` in ``cli``).

The dashboard's sign-in and gate (ui/access.py) build on these; ``engine.actors`` names who asks.
"""
