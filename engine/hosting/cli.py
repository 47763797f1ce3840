"""``python -m engine share``: make, revoke and rotate read-only share links (engine/hosting/share.py).

    share run RUN [--days 7] [--url URL]     a link to one run
    share compare RUN RUN ... [--days 7]     a link to the Compare view of these runs
    share sweep SWEEP [--days 7]             a link to one sweep
    share revoke TOKEN_ID                    that link stops working (a token or the whole link work too)
    share rotate                             a new share key: every link made so far stops working
"""

from __future__ import annotations

import argparse
import json


def cmd_share(args) -> int:
    from engine.hosting import share
    from engine.store import open_store

    store = open_store()
    if args.what == "rotate":
        share.rotate_key()
        print("A new share key is in place: every share link made so far no longer opens.")
        return 0
    if args.what == "revoke":
        if len(args.ids) != 1:
            raise share.ShareLinkError("Give one token id to revoke: python -m engine share revoke TOKEN_ID.")
        token_id, new = share.revoke(args.ids[0], store)
        print(f"Share link {token_id} " + ("is revoked: it no longer opens." if new else "was revoked already."))
        return 0
    try:
        ids = [int(item) for item in args.ids]
    except ValueError:
        raise share.ShareLinkError(f"Runs and sweeps are named by number; got {' '.join(args.ids)[:80]}.") from None
    token, view = share.mint(args.what, ids, store, days=args.days)
    url = share.link(token, args.url)
    if args.json:
        print(json.dumps({"url": url, "token_id": view.token_id, "kind": view.kind, "ids": list(view.ids),
                          "expires_at": view.expires_at}))
    else:
        print(url)
        print(f"{view.title}, read-only, until {view.expires_text}; revoke it with "
              f"`python -m engine share revoke {view.token_id}`.")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("share", help="read-only share links: `share run ID`, `share compare ID ID ...`, "
                                     "`share sweep ID`, `share revoke TOKEN_ID`, `share rotate`",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__)
    p.add_argument("what", choices=["run", "compare", "sweep", "revoke", "rotate"])
    p.add_argument("ids", nargs="*", help="the run(s) or sweep to share, or the token id to revoke")
    p.add_argument("--days", type=float, default=7.0, help="how long the link opens (default 7 days)")
    p.add_argument("--url", help="the lab's address as visitors reach it (default $CONV3D_LAB_URL or localhost:8501)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_share)
