"""Every example in the README and docs/ runs: Python pages as programs, TOML through
``qrscp --check``, command lines through the sub-command's own parser.

A page's Python blocks run in order in one namespace, in a subprocess of their
own, so a server an early block starts is there for the later blocks (as a
reader would run them) and dies with the page.  The examples use the
well-known ports and host names a reader would; the runner moves them to free
ports on 127.0.0.1 and runs in a scratch directory that holds the files the
examples name (TLS certificates, the directories of absolute example paths).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from dimsefsm.cli.main import COMMANDS, build_parser
from tests.interop.peers import free_port
from tests.tls_pki import make_pki

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
# The ports and hosts examples use, as a reader would type them.
EXAMPLE_PORTS = ("11112", "11113", "11114", "2762", "4242", "104")
EXAMPLE_HOSTS = ('"pacs.example"', '"pacs"')
EXAMPLE_ROOTS = ("/data/", "/var/", "/srv/")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the first line of code in the page
    language: str
    code: str


def blocks(page: Path, language: str) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        if match[1] == language:
            line = text.count("\n", 0, match.start(2)) + 1
            found.append(Block(page, line, language, match[2]))
    return found


def localise(code: str, ports: dict[str, int]) -> str:
    """The example with free ports, 127.0.0.1/localhost, and paths under the scratch dir."""
    for port, free in ports.items():
        code = re.sub(rf"\b{port}\b", str(free), code)
    code = code.replace('"0.0.0.0"', '"127.0.0.1"')
    for host in EXAMPLE_HOSTS:
        code = code.replace(host, '"localhost"')
    for root in EXAMPLE_ROOTS:
        code = code.replace(f'"{root}', f'"./{root[1:]}')
    return code


RUNNER = """
import json, os, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for page, line, code in blocks:
    try:
        exec(compile("\\n" * (line - 1) + code, page, "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(1)
sys.stdout.flush(); sys.stderr.flush()
os._exit(0)  # servers an example left running are threads of this process
"""

PYTHON_PAGES = [page for page in PAGES if blocks(page, "python")]


def test_the_pages_with_python_examples_are_found() -> None:
    names = {page.name for page in PYTHON_PAGES}
    assert {"README.md", "guide.md", "handlers.md", "scu.md", "statecharts.md"} <= names


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=[p.name for p in PYTHON_PAGES])
def test_python_examples_run(page: Path, tmp_path: Path) -> None:
    ports = {port: free_port() for port in EXAMPLE_PORTS}
    code = [
        (page.name, block.line, localise(block.code, ports)) for block in blocks(page, "python")
    ]
    script = tmp_path / "blocks.json"
    script.write_text(json.dumps(code))
    make_pki(tmp_path)
    for root in ("data/incoming", "var/log/dimsefsm", "srv/dicom"):
        (tmp_path / root).mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{page.name}:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr


TOML_BLOCKS = [b for page in PAGES for b in blocks(page, "toml")]


@pytest.mark.parametrize("block", TOML_BLOCKS, ids=[f"{b.page.name}:{b.line}" for b in TOML_BLOCKS])
def test_toml_examples_are_valid_qrscp_configurations(block: Block, tmp_path: Path) -> None:
    config = tmp_path / "qrscp.toml"
    config.write_text(block.code)
    done = subprocess.run(
        [sys.executable, "-m", "dimsefsm", "qrscp", "--config", str(config), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{block.page.name}:{block.line}: {done.stderr}"
    assert done.stdout.startswith("# effective settings of")


def command_lines(block: Block) -> list[tuple[int, list[str]]]:
    """Each ``dimsefsm ...`` command of a shell block, as argv after ``dimsefsm``."""
    found = []
    lines = block.code.splitlines()
    number = 0
    while number < len(lines):
        start = number
        text = lines[number].removeprefix("$ ")
        while text.rstrip().endswith("\\") and number + 1 < len(lines):
            number += 1
            text = text.rstrip()[:-1] + " " + lines[number]
        number += 1
        text = text.split("#", 1)[0]  # comments (no example has '#' inside an argument)
        text = re.sub(r"\s\d?>\s*\S+", " ", text)  # redirections
        # Optional flags in [brackets] are checked too, their METAVAR placeholders as "1";
        # an item index right after a keyword (Sequence[0].Keyword) is no such bracket.
        text = re.sub(
            r"(?<![\w)])\[([^\]]*)\]",
            lambda m: re.sub(r"(?<![-+\w])[A-Z]{1,4}\b", "1", m[1]),
            text,
        )
        words = shlex.split(text)
        if words[:1] == ["dimsefsm"] and len(words) > 1:
            found.append((block.line + start, words[1:]))
    return found


SHELL_COMMANDS = [
    (block, line, argv)
    for page in PAGES
    for language in ("sh", "")
    for block in blocks(page, language)
    for line, argv in command_lines(block)
]


def test_the_shell_examples_are_found() -> None:
    commands = {argv[0] for _, _, argv in SHELL_COMMANDS}
    assert {"qrscp", "storescu", "findscu", "getscu", "movescu", "trace"} <= commands


@pytest.mark.parametrize(
    ("block", "line", "argv"),
    SHELL_COMMANDS,
    ids=[f"{b.page.name}:{line}" for b, line, _ in SHELL_COMMANDS],
)
def test_shell_examples_name_real_sub_commands_and_flags(
    block: Block, line: int, argv: list[str]
) -> None:
    assert argv[0] in COMMANDS, f"{block.page.name}:{line}: no sub-command {argv[0]!r}"
    try:
        args = build_parser(only=argv[0]).parse_args(argv)
    except SystemExit as exc:  # argparse's answer to a bad command line
        pytest.fail(f"{block.page.name}:{line}: dimsefsm {shlex.join(argv)} -> exit {exc.code}")
    assert isinstance(args, argparse.Namespace) and args.command == argv[0]
