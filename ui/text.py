"""User strings shown as text: escaped for Streamlit's Markdown and for Plotly's HTML subset.

Run names, tags, notes, dataset and class names, file names from imports and
error messages come from people (or from files they brought). Streamlit reads
the body of ``st.markdown``/``st.caption``/``st.error``... and every widget or
page-link label as Markdown; Plotly reads trace names, hover text, titles and
tick labels as a small HTML subset (``<a href>``, ``<b>``, ``<br>``, ...). So a
run named ``[x](https://evil.example)`` would become a link, and one named
``<a href=...>`` a link in a legend. Every user string goes through one of the
two functions below on its way to a page; strings the code writes itself do not.
"""

from __future__ import annotations

import html
import re
import string

# CommonMark lets a backslash escape any ASCII punctuation character, so all of
# them are escaped: besides the obvious ([ ] ( ) ! * _ ` # < > | ~ $ \), ':'
# stops Streamlit's ':red[...]' directives and bare 'https://' autolinks, '.'
# and '@' stop GFM's 'www.' and e-mail autolinks, '&' stops entities.
_MARKDOWN_ESCAPES = str.maketrans({char: "\\" + char for char in string.punctuation})
# Streamlit's remark-gfm finds bare addresses ("https://...", "www.", "name@host.org") in the text
# *after* parsing, when backslash escapes are gone, so escaping cannot stop those autolinks. An
# invisible WORD JOINER (U+2060) inside each pattern does: after a scheme's colon, after "www",
# after "@". The text reads the same; a copy of it holds the invisible character.
WORD_JOINER = "\u2060"
_AUTOLINK_LITERAL = re.compile(r"(?i)(?<=:)(?=//)|(?<=\bwww)(?=\.)|(?<=@)")


def markdown_text(value: object) -> str:
    """``value`` as Markdown that renders as exactly its text (no link, image, HTML, emphasis or directive)."""
    return _AUTOLINK_LITERAL.sub(WORD_JOINER, str(value)).translate(_MARKDOWN_ESCAPES)


def plotly_text(value: object, limit: int | None = None) -> str:
    """``value`` for a Plotly name, title, hover or tick label: ``&``, ``<`` and ``>`` as entities,
    shortened to ``limit`` characters (with an ellipsis) when one is given.

    Plotly draws the entities as the characters, so the text reads as typed and
    no tag in it becomes markup.
    """
    return html.escape(shorten(value, limit), quote=False)


def shorten(value: object, limit: int | None) -> str:
    """``value`` as text of at most ``limit`` characters (the last one an ellipsis when cut); None: whole."""
    text = str(value)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def plotly_texts(values) -> list[str]:
    """:func:`plotly_text` of each value (axis categories, legend names)."""
    return [plotly_text(value) for value in values]


def unescape_markdown(text: str) -> str:
    """The text a reader sees of :func:`markdown_text`'s output (for tests and logs)."""
    out, escaped = [], False
    for char in text.replace(WORD_JOINER, ""):
        if escaped or char != "\\":
            out.append(char)
            escaped = False
        else:
            escaped = True
    return "".join(out)


__all__ = ["markdown_text", "plotly_text", "plotly_texts", "unescape_markdown"]
