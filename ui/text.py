"""User strings (run names, tags, notes, class names) shown as text, never as Markdown or HTML.

``st.markdown`` and the labels of many widgets read Markdown (links, emphasis,
``:red[...]`` colours, ``:material/...:`` icons, ``$...$`` maths); Plotly reads
a subset of HTML in titles, legends and hover text. A run named
``[x](https://evil.example) <b>bold</b>`` must show exactly those characters.
"""

from __future__ import annotations

import html
import re

# Every ASCII punctuation character may be backslash-escaped in CommonMark; these are the ones
# Streamlit's Markdown gives a meaning to (plus the backslash itself).
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=&])")


def markdown_text(text: object) -> str:
    """``text`` escaped for ``st.markdown`` / widget labels: every Markdown special is literal; lines joined."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", " ".join(str(text).split()))


def plotly_text(text: object) -> str:
    """``text`` escaped for Plotly titles, legend entries, tick labels and hover text (``&``, ``<``, ``>``)."""
    return html.escape(str(text), quote=False)


__all__ = ["markdown_text", "plotly_text"]
