"""The sans-I/O core opens no socket and no file: code, not comments, is checked.

Sockets, TLS, files and the dialling of associations belong to the transport and
the application (``dimsefsm.transport``, ``dimsefsm.ae``); the core takes their
results as inputs and injected objects (the C-STORE SCP's ``InstanceSink``).
"""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "dimsefsm"
CORE = sorted(
    [
        *(SRC / "fsm").glob("*.py"),
        *(SRC / "pdu").glob("*.py"),
        *(SRC / "ul").glob("*.py"),
        *(SRC / "assoc").glob("*.py"),
        *(SRC / "dimse").glob("*.py"),
        SRC / "engine.py",
        *(SRC / "services").glob("*.py"),
    ]
)
"""The core modules: every module of these packages, the Q/R SCP services included."""

NAMES = {"socket", "ssl", "dcmread"}
CALLS = {"open", "associate"}


def io_uses(path: Path) -> list[str]:
    tokens = [
        t
        for t in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
        if t.type not in (tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.NEWLINE)
    ]
    found = []
    for token, following in zip(tokens, [*tokens[1:], None], strict=True):
        if token.type != tokenize.NAME:
            continue
        called = following is not None and following.string == "("
        if token.string in NAMES or (token.string in CALLS and called):
            found.append(f"{path.name}:{token.start[0]}: {token.string}")
    return found


@pytest.mark.parametrize("path", CORE, ids=[str(p.relative_to(SRC)) for p in CORE])
def test_core_module_has_no_io(path: Path) -> None:
    assert io_uses(path) == []


def test_the_check_sees_io_in_code_but_not_in_comments(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import socket  # a socket\n"
        "x = 'open(f)'\n"
        "def f(p):\n"
        "    return open(p)\n"
        "# ae.associate(...) in a comment\n"
    )
    assert io_uses(sample) == ["sample.py:1: socket", "sample.py:4: open"]


@pytest.mark.parametrize("path", CORE, ids=[str(p.relative_to(SRC)) for p in CORE])
def test_a_plain_grep_finds_no_io_word_in_the_core(path: Path) -> None:
    """Issue 14's check as written: ``grep`` (comments and docstrings included) finds none."""
    text = path.read_text()
    words = ("socket", "ssl", "open(", "dcmread", "associate")
    assert [w for w in words if w in text] == []
