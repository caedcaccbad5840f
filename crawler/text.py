"""Characters a terminal acts on instead of showing, and text without them.

C0/C1 controls (ESC starts the sequences that clear the screen, recolour text or plant links)
and the bidi controls that reorder text. The crawler drops them from what it reads
(`clean_text`); the CLI shows any already stored as visible escapes (pipeline.output).
"""

from __future__ import annotations

import unicodedata

BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
CONTROL_CHARACTERS = BIDI_CONTROLS | {
    chr(code) for code in range(0x100) if unicodedata.category(chr(code)) == "Cc"
}
_DROP_CONTROLS = dict.fromkeys(map(ord, CONTROL_CHARACTERS))


def clean_text(text: str) -> str:
    """*text* without control characters, which a page shows as nothing but which would act
    on the terminal that prints it. Printable text, nearly all of it, is only checked.
    Tabs and newlines go too: read text has them folded to spaces first, and in a link
    (href="/p/\\n1") a browser drops them as well."""
    return text if text.isprintable() else text.translate(_DROP_CONTROLS)
