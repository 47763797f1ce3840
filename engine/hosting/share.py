"""Read-only share links: one run, one Compare view or one sweep, for someone who is not signed in.

A link is ``<lab URL>/?share=<token>``. The token carries the view (its kind,
the ids and the expiry) and an HMAC-SHA256 signature of it with the lab's share
key, so nobody can widen a link to other runs or a later expiry without the key.
The key lives in the workspace (``<CONV3D_LAB_HOME>/share.key``, 32 random
bytes, mode 0600), created on first use; ``rotate_key`` replaces it, which
revokes every link at once. Single links are revoked by their token id, kept
in the store's ``share_revocations`` table (so every dashboard process sharing
the database refuses it at once).

The dashboard (ui/access.py) lets a session holding a valid token see that
view and nothing else; the session's actor is ``actors.share_actor(token id)``,
which every engine call that changes state refuses (engine/actors.py).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass

from engine import paths
from engine.errors import LabError
from engine.store import RunStore

KINDS = ("run", "compare", "sweep")
DEFAULT_DAYS = 7.0
MAX_DAYS = 365.0
QUERY_PARAM = "share"
KEY_FILE = "share.key"
# The lab's address printed in a link by the CLI (the dashboard uses the address it is served at).
URL_ENV = "CONV3D_LAB_URL"
DEFAULT_URL = "http://localhost:8501"
_KEY_BYTES = 32


class ShareLinkError(LabError):
    """A share link that cannot be made, or one that no longer opens (altered, expired, revoked)."""


@dataclass(frozen=True)
class ShareView:
    """What a share link shows: ``kind`` ("run", "compare" or "sweep") of ``ids``, until ``expires_at``."""

    token_id: str
    kind: str
    ids: tuple[int, ...]
    expires_at: float

    @property
    def expires_text(self) -> str:
        return dt.datetime.fromtimestamp(self.expires_at, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    @property
    def title(self) -> str:
        if self.kind == "run":
            return f"Run #{self.ids[0]}"
        if self.kind == "sweep":
            return f"Sweep #{self.ids[0]}"
        return "Comparison of runs " + ", ".join(f"#{run_id}" for run_id in self.ids)


# ----------------------------------------------------------------- the key
def key_path():
    return paths.lab_home() / KEY_FILE


def _write_key(path, key: bytes, exclusive: bool) -> None:
    """Write ``key`` readable by this user only (0600 from the start: never briefly world-readable)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)


def _key() -> bytes:
    """The share key, created on first use (two processes creating it at once agree on the first)."""
    path = key_path()
    try:
        _write_key(path, secrets.token_bytes(_KEY_BYTES), exclusive=True)
    except FileExistsError:
        pass
    key = path.read_bytes()
    if len(key) < _KEY_BYTES:
        raise ShareLinkError(f"The share key {path} is damaged; run `python -m engine share rotate` to make a new one "
                             "(links shared so far stop working).")
    return key


def rotate_key() -> None:
    """Replace the share key: every link made so far stops working."""
    path = key_path()
    staging = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    _write_key(staging, secrets.token_bytes(_KEY_BYTES), exclusive=False)
    os.replace(staging, path)


# ------------------------------------------------------------ the tokens
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())


def _check_view(kind: str, ids, store: RunStore) -> tuple[int, ...]:
    if kind not in KINDS:
        raise ShareLinkError(f"A share link shows a run, a compare view or a sweep, not {str(kind)[:40]!r}.")
    ids = tuple(int(i) for i in ids)
    if not ids:
        raise ShareLinkError(f"Name the {kind} to share by its id.")
    if kind != "compare" and len(ids) != 1:
        raise ShareLinkError(f"A {kind} share link shows one {kind}; give one id (share compare takes several runs).")
    if len(set(ids)) != len(ids):
        raise ShareLinkError("A run is named twice; name each run once.")
    for item in ids:
        (store.get_sweep if kind == "sweep" else store.get_run)(item)  # a LabError sentence when there is none
    return ids


def mint(kind: str, ids, store: RunStore, *, days: float = DEFAULT_DAYS, now: float | None = None) -> tuple[str, ShareView]:
    """A signed token showing ``kind`` of ``ids`` for ``days`` from ``now``, and the view it opens."""
    ids = _check_view(kind, ids, store)
    if not 0 < float(days) <= MAX_DAYS:
        raise ShareLinkError(f"A share link lasts more than 0 and at most {MAX_DAYS:g} days; {days:g} was asked.")
    now = time.time() if now is None else now
    view = ShareView(token_id=secrets.token_hex(8), kind=kind, ids=ids, expires_at=round(now + float(days) * 86400))
    body = _b64(json.dumps({"i": view.token_id, "k": kind, "r": list(ids), "e": view.expires_at},
                           separators=(",", ":")).encode())
    return f"{body}.{_signature(_key(), body)}", view


INVALID = ("This share link is not valid: it was altered or cut short, or the lab's share key was changed "
           "(which ends every link). Ask whoever shared it for a new link.")


def verify(token: str, store: RunStore, *, now: float | None = None) -> ShareView:
    """The view ``token`` opens; ``ShareLinkError`` with a sentence when it is altered, expired or revoked."""
    body, _, signature = str(token or "").strip().partition(".")
    if not body or not signature or not hmac.compare_digest(_signature(_key(), body), signature):
        raise ShareLinkError(INVALID)
    try:
        payload = json.loads(_unb64(body))
        view = ShareView(token_id=str(payload["i"]), kind=str(payload["k"]),
                         ids=tuple(int(i) for i in payload["r"]), expires_at=float(payload["e"]))
    except (ValueError, KeyError, TypeError, binascii.Error) as e:  # signed but unreadable: another version's
        raise ShareLinkError(INVALID) from e
    if (time.time() if now is None else now) >= view.expires_at:
        raise ShareLinkError(f"This share link expired on {view.expires_text}; ask whoever shared it for a new one.")
    if store.share_revoked(view.token_id):
        raise ShareLinkError("This share link was revoked by the lab's operator; ask whoever shared it for a new one.")
    return view


def token_id_of(token_or_id: str) -> str:
    """The id of a token (a whole link, a token, or the id itself)."""
    text = str(token_or_id).strip().rsplit(f"{QUERY_PARAM}=", 1)[-1]
    if "." not in text:
        return text
    try:
        return str(json.loads(_unb64(text.split(".", 1)[0]))["i"])
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise ShareLinkError("That is not a share link, token or token id.") from e


def revoke(token_or_id: str, store: RunStore) -> tuple[str, bool]:
    """Revoke a link by its token id (or the token, or the link); returns (id, whether it was newly revoked)."""
    token_id = token_id_of(token_or_id)
    if not token_id or len(token_id) > 40:
        raise ShareLinkError("That is not a share link, token or token id.")
    return token_id, store.revoke_share(token_id)


def link(token: str, base_url: str | None = None) -> str:
    """The address that opens ``token``: ``base_url`` (default ``$CONV3D_LAB_URL`` or localhost:8501)."""
    base = (base_url or os.environ.get(URL_ENV) or DEFAULT_URL).split("?", 1)[0].rstrip("/")
    return f"{base}/?{QUERY_PARAM}={token}"


__all__ = ["DEFAULT_DAYS", "KINDS", "QUERY_PARAM", "ShareLinkError", "ShareView", "link", "mint", "revoke",
           "rotate_key", "token_id_of", "verify"]
