"""UID syntax (PS3.5 section 9.1): what may be filed, indexed and named on disk.

A UID is the key an archive files an instance under, so a value that is not
a UID must be refused before it names a file or an index entry: ``..1.2.3``
would otherwise share the file of ``1.2.3``, and ``1.2\\3`` is two values.
PS3.5 9.1: components of ASCII digits separated by single dots, no leading
zero in a component of more than one digit, at most 64 characters.  A value
read from the wire may carry one trailing NUL (UI padding to even length,
PS3.5 6.2); that padding is not part of the UID.

The checks are pure functions of the value, usable by the core (the C-STORE
SCP checks the command) and by applications (the Q/R SCP checks the data set).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_UID_LENGTH", "is_valid_uid", "uid_problem"]

MAX_UID_LENGTH: Final = 64

# [0-9], not \d: \d also matches other scripts' digits.
_COMPONENT: Final = r"(?:0|[1-9][0-9]*)"
_UID: Final = re.compile(rf"{_COMPONENT}(?:\.{_COMPONENT})*")
_NOT_UID_CHARACTER: Final = re.compile(r"[^0-9.]")
# Named rather than quoted: an ErrorComment turns a backslash into "/".
_CHARACTER_NAMES: Final = {
    " ": "a space",
    "\\": "a backslash (a second value)",
    "/": "a slash",
    "\x00": "a NUL",
}


def uid_problem(value: object) -> str | None:
    """None if ``value`` is a valid UID, else a short reason (fit for an ErrorComment).

    Trailing NUL padding is allowed and ignored; anything else (a space, a
    backslash, a second value) is part of the value and makes it invalid.
    """
    if not isinstance(value, str):
        return "is not a single text value" if value is not None else "is missing"
    text = value.rstrip("\x00")
    if not text:
        return "is empty"
    if len(text) > MAX_UID_LENGTH:
        return f"is {len(text)} characters long (at most {MAX_UID_LENGTH})"
    if _UID.fullmatch(text):
        return None
    bad = _NOT_UID_CHARACTER.search(text)
    if bad is not None:
        char = bad.group()
        return f"holds {_CHARACTER_NAMES.get(char, f'U+{ord(char):04X}')} (only digits and dots)"
    if text.startswith(".") or text.endswith(".") or ".." in text:
        return "has an empty component"
    return "has a component with a leading zero"


def is_valid_uid(value: object) -> bool:
    """True for a single valid UID (trailing NUL padding allowed)."""
    return uid_problem(value) is None
