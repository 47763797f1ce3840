"""Who asks the engine for a change: the vocabulary of the ``owner`` / ``actor`` arguments.

``None`` is the operator (the CLI on the server): never checked. A dashboard
session passes its identity (ui/access.py: a browser's hash or a login). A
session opened by a read-only share link (engine/hosting/share.py) passes
``share_actor(token_id)``; every engine call that changes state refuses such
an actor with ``ReadOnlyError``, whatever the page shows, so a share link can
never stop, resume, delete, tag, annotate, launch or import.
"""

from __future__ import annotations

from engine.errors import LabError

# What an imported dataset's manifest records as its owner when the operator imported it (the CLI).
OPERATOR = None
_SHARE_PREFIX = "share-link:"


class ReadOnlyError(LabError):
    """A change asked for by a session that may only view (a read-only share link)."""


def share_actor(token_id: str) -> str:
    """The actor of a session opened by the share link ``token_id``."""
    return _SHARE_PREFIX + str(token_id)


def is_share(actor: str | None) -> bool:
    return isinstance(actor, str) and actor.startswith(_SHARE_PREFIX)


def check_may_change(actor: str | None, action: str = "change") -> None:
    """Raise ``ReadOnlyError`` when ``actor`` is a read-only share link's session."""
    if is_share(actor):
        raise ReadOnlyError(f"This page was opened by a read-only share link: it can show this view but not "
                            f"{action} anything. Open the lab itself (and sign in) to {action}.")


__all__ = ["OPERATOR", "ReadOnlyError", "check_may_change", "is_share", "share_actor"]
