"""MkDocs hook: render the reST left in the package's docstrings (roles, ``::``) as Markdown would.

Docstrings say :class:`~pywebtransport.exceptions.ConfigurationError`, which Markdown turns
into ``:class:<code>~pywebtransport...</code>``. This hook turns each such role into an
optional autorefs link (plain code where the target is not documented), showing the last
component when the target starts with ``~`` as Sphinx does.
"""

from __future__ import annotations

import html
import re
from typing import Any

__all__ = ["on_page_content"]

# reST's "text::" introducing a literal block: Markdown renders the block, keep one colon.
_LITERAL_INTRO = re.compile(r"::</p>(\s*<div class=\"[^\"]*highlight)")
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|exc|data|obj|const):<code>(~?)([^<]+)</code>")


def _replace(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    target = html.unescape(target).strip()
    shown = target.rsplit(".", 1)[-1] if tilde else target
    if target.startswith("pywebtransport."):
        return f'<autoref identifier="{html.escape(target)}" optional><code>{html.escape(shown)}</code></autoref>'
    return f"<code>{html.escape(shown)}</code>"


def on_page_content(html_text: str, **_: Any) -> str:
    """Rewrite the roles in one page's HTML."""
    return _LITERAL_INTRO.sub(r":</p>\1", _ROLE.sub(_replace, html_text))
