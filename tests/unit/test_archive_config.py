"""The qrscp configuration file: a good file read whole, each mistake named with its line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dimsefsm.archive.config import (
    ConfigError,
    Peer,
    Settings,
    Timeouts,
    apply_overrides,
    format_settings,
    key_lines,
    load_settings,
)
from dimsefsm.cli.main import main

GOOD = """\
# The archive of the radiology department.
ae_title = "ARCHIVE"
port = 11150
bind_address = "0.0.0.0"
storage = "store"             # relative: to this file's directory
database = "sqlite:///index.db"
max_associations = 8
max_pdu = 65536
fsync = true
audit = "audit.jsonl"

[timeouts]
acse = 10
dimse = 120.5

[peers.ct]
ae_title = "CT01"
host = "10.1.2.3"
port = 104
may = ["store", "find"]
check_host = true

[peers.viewer]   # its AE title is its name
host = "viewer.example"
port = 11113
may = [
  "find",
  "get",
  "receive",
]
identity = "required"
tls_subject = "CN=viewer"

[users]
alice = "scrypt$16384$8$1$c2FsdA==$aGFzaA=="
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qrscp.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_good_file_is_read_whole(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.ae_title == "ARCHIVE"
    assert (settings.port, settings.bind_address) == (11150, "0.0.0.0")
    assert settings.storage == tmp_path / "store"
    assert settings.database == "sqlite:///index.db"
    assert (settings.max_associations, settings.max_pdu, settings.fsync) == (8, 65536, True)
    assert settings.audit == "audit.jsonl"
    assert settings.timeouts == Timeouts(acse=10.0, dimse=120.5)
    assert settings.peers["ct"] == Peer(
        "ct", "CT01", "10.1.2.3", 104, frozenset({"store", "find"}), check_host=True
    )
    viewer = settings.peers["viewer"]
    assert viewer.ae_title == "viewer"
    assert viewer.may == {"find", "get", "receive"}
    assert (viewer.identity, viewer.tls_subject) == ("required", "CN=viewer")
    assert settings.users == {"alice": "scrypt$16384$8$1$c2FsdA==$aGFzaA=="}
    assert settings.accept_any_caller is False
    assert settings.peer_by_ae_title("CT01 ") == settings.peers["ct"]


def test_no_file_means_the_embedded_defaults_of_make_run() -> None:
    settings = Settings()
    assert (settings.ae_title, settings.port) == ("DIMSEFSM", 11112)
    assert settings.bind_address == "127.0.0.1"
    assert settings.storage == Path("dicom-store")
    assert settings.accept_any_caller and not settings.peers


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ('ae_title = "A"\nport = "104"\n', 2, "port: must be an integer, not a string"),
        ("port = 70000\n", 1, "port: 70000 is out of range 0..65535"),
        ('ae_title = "A"\n\ncolour = "blue"\n', 3, "colour: unknown key"),
        ('ae_title = "THIS-IS-FAR-TOO-LONG"\n', 1, "longer than 16 characters"),
        ('ae_title = "A\\\\B"\n', 1, "without backslash"),
        ("fsync = 1\n", 1, "fsync: must be true or false, not an integer"),
        ("[timeouts]\nacse = 5\ndimse = -1\n", 3, "timeouts.dimse: -1 must be a positive"),
        ("[timeouts]\nartim = 5\n", 2, "timeouts.artim: unknown key"),
        ("max_pdu = 12\n", 1, "max_pdu: 12 is out of range"),
        ('storage = ""\n', 1, "storage: must not be empty"),
        (
            '[peers.ct]\nhost = "h"\nmay = ["store", "stor"]\n',
            3,
            "peers.ct.may: 'stor' is not one of store, find, get, move, receive",
        ),
        ('[peers.ct]\nmay = "store"\n', 2, "peers.ct.may: must be a list"),
        ('[peers.ct]\nmay = ["receive"]\n', 2, '"receive" (a C-MOVE destination) needs host'),
        ("[peers.ct]\ncheck_host = true\n", 2, "peers.ct.check_host: needs the peer's host"),
        ('[peers.ct]\nidentity = "maybe"\n', 2, "'maybe' is not one of optional, required"),
        ('[peers.ct]\nhost = "h"\nhots = "h"\n', 3, "peers.ct.hots: unknown key"),
        ("[peers.ct]\nport = 0\n", 2, "peers.ct.port: 0 is out of range 1..65535"),
        (
            '[peers.a]\nae_title = "X"\n[peers.b]\nae_title = "X"\n',
            4,
            "peers.b.ae_title: AE title 'X' is already that of peer 'a'",
        ),
        ("[peers]\nct = 3\n", 2, "peers.ct: must be a table, not an integer"),
        ("[users]\nbob = 5\n", 2, "users.bob: must be a string"),
        ('ae_title = "A"\nport = = 3\n', 2, "not valid TOML"),
    ],
)
def test_each_mistake_names_file_line_and_problem(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.line == line
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml")


def test_key_lines_skip_multiline_arrays_and_strings() -> None:
    text = 'a = 1\nb = [\n  "x = 1",\n]\nc = """\nd = 2\n"""\n[t."q k"]\ne.f = 3\n'
    assert key_lines(text) == {
        ("a",): 1,
        ("b",): 2,
        ("c",): 5,
        ("t", "q k"): 8,
        ("t", "q k", "e", "f"): 9,
    }


def test_flags_given_override_the_file_and_dest_adds_a_receiving_peer(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    given = {
        "port": 4242,
        "ae_title": "OTHER",
        "storage": "elsewhere",
        "dimse_timeout": 7.0,
        "timeout": 3.0,
        "dest": [("CT01", ("10.9.9.9", 4104)), ("NEW", ("127.0.0.1", 11199))],
    }
    effective = apply_overrides(settings, given)
    assert (effective.port, effective.ae_title) == (4242, "OTHER")
    assert effective.storage == Path("elsewhere")
    assert effective.timeouts == Timeouts(connection=3.0, acse=10.0, dimse=7.0)
    assert effective.max_associations == 8  # not given: the file's value stays
    ct = effective.peers["ct"]
    assert (ct.host, ct.port, ct.may) == ("10.9.9.9", 4104, {"store", "find", "receive"})
    assert effective.peers["NEW"] == Peer("NEW", "NEW", "127.0.0.1", 11199, frozenset({"receive"}))
    assert effective.accept_any_caller is False  # the file's peers decide, not --dest


def test_dest_alone_keeps_the_server_open() -> None:
    effective = apply_overrides(Settings(), {"dest": [("STORE", ("127.0.0.1", 11113))]})
    assert effective.accept_any_caller
    assert effective.peers["STORE"].may == {"receive"}


def test_format_settings_round_trips_without_secrets(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    shown = format_settings(settings)
    assert "scrypt" not in shown and "# alice" in shown
    again = write(tmp_path, shown.replace("[users]  # password hashes not shown", ""))
    reread = load_settings(again)
    assert reread.peers == settings.peers
    assert (reread.port, reread.timeouts, reread.storage) == (
        settings.port,
        settings.timeouts,
        settings.storage,
    )


def test_check_prints_effective_settings_with_flags_applied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD)
    assert main(["qrscp", "--config", str(path), "--check", "-td", "9", "--bind", "::1"]) == 0
    out = capsys.readouterr().out
    assert 'bind_address = "::1"' in out
    assert "dimse = 9.0" in out and "acse = 10.0" in out
    assert '[peers.ct]\nae_title = "CT01"' in out


def test_check_without_a_file_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qrscp", "--check"]) == 0
    out = capsys.readouterr().out
    assert 'bind_address = "127.0.0.1"' in out and "port = 11112" in out
    assert "any calling AE title is accepted" in out
    assert "# database: not set: the SQLite file dicom-store/.dimsefsm/index.sqlite" in out


def test_check_of_a_bad_file_exits_2_with_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, '[peers.ct]\nhost = "h"\nmay = ["steal"]\n')
    assert main(["qrscp", "--config", str(path), "--check"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:3: peers.ct.may: 'steal' is not one of" in err


def test_bad_dest_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qrscp", "--check", "--dest", "NOPORT=host"]) == 2
    assert "--dest wants AET=HOST:PORT" in capsys.readouterr().err


def test_the_readmes_qrscp_toml_is_valid(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    settings = load_settings(write(tmp_path, example))
    assert settings.peers["viewer"].may == {"find", "get", "move", "receive"}
    assert not settings.accept_any_caller


def test_check_also_refuses_what_the_server_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, 'worklist = "wl"\n')
    assert main(["qrscp", "--config", str(path), "--check"]) == 2
    assert f"worklist {tmp_path / 'wl'} is not a directory" in capsys.readouterr().err

    def no_dns(host: str, *args: object, **kw: object) -> object:
        raise OSError("unknown host")

    monkeypatch.setattr("socket.getaddrinfo", no_dns)
    path = write(tmp_path, '[peers.ct]\nhost = "ct.example"\ncheck_host = true\n')
    assert main(["qrscp", "--config", str(path), "--check"]) == 2
    assert "peers.ct.host: cannot resolve host 'ct.example'" in capsys.readouterr().err
