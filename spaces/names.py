"""What a name may be: speakers' and participants' names, and space titles.

Names end up in transcripts, captions (a WebVTT ``<v Name>`` tag ends at a
line break), search rows and logs, one per line. So no control character
and no Unicode line break of any kind: besides CR and LF, VT, FF, NEL
(U+0085, a C1 control), LINE SEPARATOR (U+2028) and PARAGRAPH SEPARATOR
(U+2029) all end a line for ``str.splitlines`` and for browsers.
"""

from __future__ import annotations

import re

#: One character a name may hold: anything but C0/C1 controls, DEL and the
#: Unicode line and paragraph separators. Valid in Python and in pydantic's
#: (Rust) regular expressions alike.
NAME_CHAR = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]"
MAX_NAME_CHARS = 64
MAX_TITLE_CHARS = 200

#: A participant's or speaker's name (for ``Field(pattern=...)``).
NAME_PATTERN = rf"^{NAME_CHAR}{{1,{MAX_NAME_CHARS}}}$"
#: A space's title.
TITLE_PATTERN = rf"^{NAME_CHAR}{{1,{MAX_TITLE_CHARS}}}$"

_NAME = re.compile(NAME_PATTERN)
_TITLE = re.compile(TITLE_PATTERN)


def is_valid_name(name: str) -> bool:
    """1 to 64 characters, none a control or a line break, not only spaces."""
    return bool(_NAME.fullmatch(name)) and bool(name.strip())


def is_valid_title(title: str) -> bool:
    return bool(_TITLE.fullmatch(title)) and bool(title.strip())
