"""The qrscp configuration file (TOML) and the embedded defaults ``make run`` starts with.

One file says who the server is, where it keeps instances, how long it waits,
and who may do what::

    ae_title = "ARCHIVE"
    port = 11112
    bind_address = "0.0.0.0"
    storage = "/srv/dicom"

    [timeouts]
    dimse = 60

    [commitment]
    retries = 3
    retry_interval = 10
    same_association = true

    [peers.ct]
    ae_title = "CT01"
    host = "10.1.2.3"
    port = 104
    may = ["store", "find", "receive"]
    check_host = true

A mistake is found before the server listens: an unknown key, a wrong type or a
bad value is a :class:`ConfigError` naming the file, the line and the problem.
Relative paths in the file are relative to the file's own directory, so a
configuration means the same whatever directory the server is started from.

Command-line flags override the file; :func:`apply_overrides` takes only the
flags actually given (the parser's defaults are ``None`` for that reason).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from dimsefsm.archive.location import INDEX_DIRECTORY, INDEX_FILE
from dimsefsm.assoc.negotiation import DEFAULT_MAX_PDU

PERMISSIONS: Final = ("store", "find", "get", "move", "receive")
"""What a peer may do: send us instances, query, retrieve by C-GET, retrieve by C-MOVE,
and be a C-MOVE destination."""
IDENTITY_MODES: Final = ("optional", "required")
DEFAULT_PORT: Final = 11112
DEFAULT_AE_TITLE: Final = "DIMSEFSM"
DEFAULT_BIND_ADDRESS: Final = "127.0.0.1"  # safe default: reachable from this machine only
DEFAULT_STORAGE: Final = "dicom-store"
DEFAULT_MAX_ASSOCIATIONS: Final = 32
MIN_MAX_PDU: Final = 1024
MAX_MAX_PDU: Final = 0xFFFFFFFF


class ConfigError(ValueError):
    """A configuration that cannot be used: where (file and line) and why."""

    def __init__(self, problem: str, source: Path | None = None, line: int | None = None) -> None:
        self.problem = problem
        self.source = source
        self.line = line
        where = "" if source is None else f"{source}:" if line is None else f"{source}:{line}:"
        super().__init__(f"{where} {problem}" if where else problem)


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds; each maps onto one of the server flags (``-to -ta -td -tn --pdu-timeout``)."""

    connection: float = 30.0  # -to: ARTIM, TLS handshakes, our own connects (C-MOVE)
    acse: float = 30.0  # -ta: awaiting A-ASSOCIATE-AC/RJ and A-RELEASE-RP
    dimse: float = 30.0  # -td: awaiting each response, C-GET/C-MOVE sub-operations included
    network: float = 60.0  # -tn: an association idle this long is aborted
    pdu: float = 60.0  # --pdu-timeout: a PDU must be complete this long after its first byte


@dataclass(frozen=True, slots=True)
class Commitment:
    """``[commitment]``: how a Storage Commitment report reaches a requestor that has left.

    The report goes on the requesting association while it is open
    (``same_association = false``: never), else on a new association to the
    requestor (a peer that may ``receive``); when that fails it is tried
    ``retries`` more times, ``retry_interval`` seconds apart, then given up
    (logged).
    """

    retries: int = 3
    retry_interval: float = 10.0
    same_association: bool = True


@dataclass(frozen=True, slots=True)
class Peer:
    """One ``[peers.NAME]`` table: an application entity we know and what it may do."""

    name: str
    ae_title: str
    host: str | None = None
    port: int | None = None
    may: frozenset[str] = frozenset()
    check_host: bool = False
    identity: str = "optional"
    tls_subject: str | None = None

    @property
    def address(self) -> tuple[str, int] | None:
        """Where to reach it (as a C-MOVE destination), when both host and port are known."""
        if self.host is None or self.port is None:
            return None
        return self.host, self.port


@dataclass(frozen=True, slots=True)
class Settings:
    """The effective configuration of one qrscp: the file's values over the defaults."""

    ae_title: str = DEFAULT_AE_TITLE
    port: int = DEFAULT_PORT
    bind_address: str = DEFAULT_BIND_ADDRESS
    storage: Path = Path(DEFAULT_STORAGE)
    database: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    commitment: Commitment = field(default_factory=Commitment)
    max_associations: int = DEFAULT_MAX_ASSOCIATIONS
    max_pending: int | None = None  # connections without an association; None: 4 per slot
    max_pdu: int = DEFAULT_MAX_PDU
    workers: int | None = None  # worker processes; None: one per core (transport.workers)
    promiscuous: bool = False  # accept any called AE title
    fsync: bool = False
    worklist: Path | None = None
    dest_tls: bool = False
    peers: Mapping[str, Peer] = field(default_factory=dict)
    users: Mapping[str, str] = field(default_factory=dict)  # name -> salted password hash
    audit: str | None = None
    accept_any_caller: bool = True
    """No ``[peers]`` in the file: any calling AE title may associate and do anything.
    ``--dest`` destinations alone do not change that (they are where C-MOVE may send)."""
    source: Path | None = None  # the file these settings were read from

    def peer_by_ae_title(self, ae_title: str) -> Peer | None:
        wanted = ae_title.strip()
        return next((p for p in self.peers.values() if p.ae_title == wanted), None)


# -- reading a file ---------------------------------------------------------------------
def load_settings(path: str | Path) -> Settings:
    """Read and check a configuration file; :class:`ConfigError` says where it is wrong."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", source) from exc
    return parse_settings(text, source)


_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def parse_settings(text: str, source: Path) -> Settings:
    """The settings in ``text`` (the contents of ``source``, which anchors relative paths)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_LINE.search(message)
        line = int(found.group(1)) if found else None
        raise ConfigError(
            f"not valid TOML: {_TOML_LINE.sub('', message).strip()}", source, line
        ) from exc
    return _Reader(text, source).settings(data)


class _Reader:
    """Turns the parsed TOML into :class:`Settings`, every complaint located in the text."""

    def __init__(self, text: str, source: Path) -> None:
        self.source = source
        self.lines = key_lines(text)
        self.base = source.parent

    def fail(self, path: tuple[str, ...], problem: str) -> ConfigError:
        return ConfigError(f"{'.'.join(path)}: {problem}", self.source, self.line_of(path))

    def line_of(self, path: tuple[str, ...]) -> int | None:
        """The line where ``path`` is set, else where its nearest enclosing table is."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def settings(self, data: dict[str, Any]) -> Settings:
        self.only(data, (), _TOP_KEYS)
        defaults = Settings()
        values: dict[str, Any] = {"source": self.source}
        for key, check in _SCALARS.items():
            if key in data:
                values[key] = check(self, (key,), data[key])
        for key in ("storage", "worklist"):
            if key in data:
                values[key] = self.path((key,), data[key])
        if "timeouts" in data:
            values["timeouts"] = self.timeouts(data["timeouts"])
        if "commitment" in data:
            values["commitment"] = self.commitment(data["commitment"])
        if "peers" in data:
            peers = self.peers(data["peers"])
            values["peers"] = peers
            values["accept_any_caller"] = not peers
        if "users" in data:
            values["users"] = self.users(data["users"])
        return replace(defaults, **values)

    # -- shapes ------------------------------------------------------------------------
    def only(self, table: dict[str, Any], path: tuple[str, ...], allowed: Iterable[str]) -> None:
        known = tuple(allowed)
        for key in table:
            if key not in known:
                raise self.fail((*path, key), f"unknown key (expected one of {', '.join(known)})")

    def table(self, path: tuple[str, ...], value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a table, not {_kind(value)}")
        return value

    def string(self, path: tuple[str, ...], value: object) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"must be a string, not {_kind(value)}")
        if not value.strip():
            raise self.fail(path, "must not be empty")
        return value

    def boolean(self, path: tuple[str, ...], value: object) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false, not {_kind(value)}")
        return value

    def integer(self, path: tuple[str, ...], value: object, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"must be an integer, not {_kind(value)}")
        if not low <= value <= high:
            raise self.fail(path, f"{value} is out of range {low}..{high}")
        return value

    def seconds(self, path: tuple[str, ...], value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"must be a number of seconds, not {_kind(value)}")
        if not (math.isfinite(value) and value > 0):
            raise self.fail(path, f"{value} must be a positive number of seconds")
        return float(value)

    def path(self, key: tuple[str, ...], value: object) -> Path:
        return self.base / Path(self.string(key, value)).expanduser()

    def ae_title(self, path: tuple[str, ...], value: object) -> str:
        title = self.string(path, value)
        problem = ae_title_problem(title)
        if problem is not None:
            raise self.fail(path, problem)
        return title.strip()

    # -- sections ----------------------------------------------------------------------
    def timeouts(self, value: object) -> Timeouts:
        table = self.table(("timeouts",), value)
        names = Timeouts.__dataclass_fields__
        self.only(table, ("timeouts",), names)
        return Timeouts(**{k: self.seconds(("timeouts", k), v) for k, v in table.items()})

    def commitment(self, value: object) -> Commitment:
        at = ("commitment",)
        table = self.table(at, value)
        self.only(table, at, Commitment.__dataclass_fields__)
        values: dict[str, Any] = {}
        if "retries" in table:
            values["retries"] = self.integer((*at, "retries"), table["retries"], 0, 1000)
        if "retry_interval" in table:
            values["retry_interval"] = self.seconds(
                (*at, "retry_interval"), table["retry_interval"]
            )
        if "same_association" in table:
            values["same_association"] = self.boolean(
                (*at, "same_association"), table["same_association"]
            )
        return Commitment(**values)

    def peers(self, value: object) -> dict[str, Peer]:
        table = self.table(("peers",), value)
        peers: dict[str, Peer] = {}
        titles: dict[str, str] = {}
        for name, body in table.items():
            peer = self.peer(name, body)
            if peer.ae_title in titles:
                raise self.fail(
                    ("peers", name, "ae_title"),
                    f"AE title {peer.ae_title!r} is already that of peer {titles[peer.ae_title]!r}",
                )
            titles[peer.ae_title] = name
            peers[name] = peer
        return peers

    def peer(self, name: str, value: object) -> Peer:
        at = ("peers", name)
        table = self.table(at, value)
        self.only(table, at, _PEER_KEYS)
        title = self.ae_title((*at, "ae_title"), table.get("ae_title", name))
        host = self.string((*at, "host"), table["host"]).strip() if "host" in table else None
        port = self.integer((*at, "port"), table["port"], 1, 65535) if "port" in table else None
        may = self.may((*at, "may"), table.get("may", []))
        check_host = self.boolean((*at, "check_host"), table.get("check_host", False))
        identity = self.string((*at, "identity"), table.get("identity", "optional"))
        if identity not in IDENTITY_MODES:
            raise self.fail(
                (*at, "identity"), f"{identity!r} is not one of {', '.join(IDENTITY_MODES)}"
            )
        subject = table.get("tls_subject")
        if subject is not None:
            subject = self.string((*at, "tls_subject"), subject)
        if check_host and host is None:
            raise self.fail((*at, "check_host"), "needs the peer's host")
        if "receive" in may and (host is None or port is None):
            raise self.fail((*at, "may"), '"receive" (a C-MOVE destination) needs host and port')
        return Peer(name, title, host, port, may, check_host, identity, subject)

    def may(self, path: tuple[str, ...], value: object) -> frozenset[str]:
        if not isinstance(value, list):
            raise self.fail(path, f"must be a list of {', '.join(PERMISSIONS)}")
        for item in value:
            if item not in PERMISSIONS:
                raise self.fail(path, f"{item!r} is not one of {', '.join(PERMISSIONS)}")
        return frozenset(value)

    def users(self, value: object) -> dict[str, str]:
        table = self.table(("users",), value)
        return {name: self.string(("users", name), hashed) for name, hashed in table.items()}


def _ae_title_value(reader: _Reader, path: tuple[str, ...], value: object) -> str:
    return reader.ae_title(path, value)


def _bind(reader: _Reader, path: tuple[str, ...], value: object) -> str:
    return reader.string(path, value).strip()


def _optional_string(reader: _Reader, path: tuple[str, ...], value: object) -> str:
    return reader.string(path, value)


def _port(reader: _Reader, path: tuple[str, ...], value: object) -> int:
    return reader.integer(path, value, 0, 65535)


def _count(reader: _Reader, path: tuple[str, ...], value: object) -> int:
    return reader.integer(path, value, 1, 1_000_000)


def _max_pdu(reader: _Reader, path: tuple[str, ...], value: object) -> int:
    return reader.integer(path, value, MIN_MAX_PDU, MAX_MAX_PDU)


_SCALARS: dict[str, Callable[[_Reader, tuple[str, ...], object], object]] = {
    "ae_title": _ae_title_value,
    "port": _port,
    "bind_address": _bind,
    "database": _optional_string,
    "audit": _optional_string,
    "max_associations": _count,
    "max_pending": _count,
    "max_pdu": _max_pdu,
    "workers": _count,
    "promiscuous": _Reader.boolean,
    "fsync": _Reader.boolean,
    "dest_tls": _Reader.boolean,
}
_TOP_KEYS = (*_SCALARS, "storage", "worklist", "timeouts", "commitment", "peers", "users")
_PEER_KEYS = ("ae_title", "host", "port", "may", "check_host", "identity", "tls_subject")


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "a table"})
    return names.get(type(value), type(value).__name__)


def ae_title_problem(title: str) -> str | None:
    """Why ``title`` cannot be an AE title (PS3.5 AE: 16 characters, no backslash), or None."""
    stripped = title.strip()
    if not stripped:
        return "an AE title must not be empty"
    if len(stripped) > 16:
        return f"AE title {stripped!r} is longer than 16 characters"
    if "\\" in stripped or not all(" " <= c <= "~" for c in stripped):
        return f"AE title {stripped!r} may hold printable ASCII only, without backslash"
    return None


# -- where each key is --------------------------------------------------------------------
_HEADER = re.compile(r"^\s*\[\[?\s*(?P<name>[^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGNMENT = re.compile(
    r"^\s*(?P<key>(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
    r"(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
)
_STRINGS = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'")
_KEY_PART = re.compile(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)")


def _dotted(key: str) -> tuple[str, ...]:
    return tuple(a or b or c for a, b, c in _KEY_PART.findall(key))


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Line numbers (1-based) of every table header and key assignment, by key path.

    Enough of TOML to point at a mistake: headers, (dotted, quoted) keys; a line
    inside a multi-line string or array is not a key.
    """
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    depth = 0  # brackets still open: inside a multi-line array
    in_string: str | None = None  # inside a multi-line string closed by these quotes
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if line.count(in_string) % 2:
                in_string = None
            continue
        code = line
        if depth == 0:
            header = _HEADER.match(line)
            if header:
                table = _dotted(header.group("name"))
                lines.setdefault(table, number)
                continue
            assignment = _ASSIGNMENT.match(line)
            if assignment is None:
                continue
            lines.setdefault((*table, *_dotted(assignment.group("key"))), number)
            code = line[assignment.end() :]
        for quotes in ('"""', "'''"):
            if code.count(quotes) % 2:
                in_string = quotes
        code = _STRINGS.sub("", code).split("#", 1)[0]
        depth = max(0, depth + code.count("[") - code.count("]"))
    return lines


# -- command-line flags over the file ----------------------------------------------------
def apply_overrides(settings: Settings, given: Mapping[str, Any]) -> Settings:
    """``settings`` with each given flag's value in place (keys as :data:`OVERRIDES` names).

    ``dest`` adds quick C-MOVE destinations (``AET=HOST:PORT`` parsed already into
    ``(aet, (host, port))``): a peer that may ``receive``; a listed peer of that AE
    title gets that address and ``receive`` added.
    """
    values: dict[str, Any] = {}
    timeouts: dict[str, float] = {}
    for key, value in given.items():
        if value is None:
            continue
        if key in _TIMEOUT_FLAGS:
            timeouts[_TIMEOUT_FLAGS[key]] = value
        elif key == "dest":
            values["peers"] = with_destinations(settings.peers, value)
        elif key in ("storage", "worklist"):
            values[key] = Path(value)
        elif key in _SETTING_FLAGS:
            values[key] = value
        else:
            raise KeyError(f"no setting for flag {key!r}")
    if timeouts:
        values["timeouts"] = replace(settings.timeouts, **timeouts)
    return replace(settings, **values)


# Flag destinations (argparse ``dest``) that are timeouts, and the Timeouts field each sets.
_TIMEOUT_FLAGS: Final = {
    "timeout": "connection",
    "acse_timeout": "acse",
    "dimse_timeout": "dimse",
    "network_timeout": "network",
    "pdu_timeout": "pdu",
}
_SETTING_FLAGS: Final = frozenset(
    {"ae_title", "port", "bind_address", "database", "max_associations", "max_pending"}
    | {"max_pdu", "promiscuous", "fsync", "dest_tls", "audit", "workers"}
)


def with_destinations(
    peers: Mapping[str, Peer], destinations: Iterable[tuple[str, tuple[str, int]]]
) -> dict[str, Peer]:
    """The peers plus ``--dest`` destinations, each a peer that may ``receive``."""
    merged = dict(peers)
    for aet, (host, port) in destinations:
        known = next((p for p in merged.values() if p.ae_title == aet), None)
        if known is None:
            merged[aet] = Peer(aet, aet, host, port, frozenset({"receive"}))
        else:
            merged[known.name] = replace(known, host=host, port=port, may=known.may | {"receive"})
    return merged


# -- showing the effective settings ------------------------------------------------------
def format_settings(settings: Settings) -> str:
    """The effective settings as TOML (password hashes left out), for ``--check``."""
    out = [f"# effective settings{'' if settings.source is None else f' of {settings.source}'}"]
    top: dict[str, object] = {
        "ae_title": settings.ae_title,
        "port": settings.port,
        "bind_address": settings.bind_address,
        "storage": str(settings.storage),
        "database": settings.database,
        "max_associations": settings.max_associations,
        "max_pending": settings.max_pending,
        "max_pdu": settings.max_pdu,
        "workers": settings.workers,
        "promiscuous": settings.promiscuous,
        "fsync": settings.fsync,
        "worklist": None if settings.worklist is None else str(settings.worklist),
        "dest_tls": settings.dest_tls,
        "audit": settings.audit,
    }
    out += _assignments(top)
    if settings.database is None:
        index = Path(settings.storage) / INDEX_DIRECTORY / INDEX_FILE
        out[out.index("# database: not set")] += f": the SQLite file {index}"
    if settings.accept_any_caller:
        out.append("# no [peers] listed: any calling AE title is accepted")
    out += ["", "[timeouts]"]
    out += _assignments({k: getattr(settings.timeouts, k) for k in Timeouts.__dataclass_fields__})
    out += ["", "[commitment]"]
    out += _assignments(
        {k: getattr(settings.commitment, k) for k in Commitment.__dataclass_fields__}
    )
    for peer in settings.peers.values():
        out += ["", f"[peers.{_key(peer.name)}]"]
        out += _assignments(
            {
                "ae_title": peer.ae_title,
                "host": peer.host,
                "port": peer.port,
                "may": [p for p in PERMISSIONS if p in peer.may],
                "check_host": peer.check_host,
                "identity": peer.identity,
                "tls_subject": peer.tls_subject,
            }
        )
    if settings.users:
        out += ["", "[users]  # password hashes not shown"]
        out += [f"# {_key(name)}" for name in settings.users]
    return "\n".join(out) + "\n"


def _assignments(values: Mapping[str, object]) -> list[str]:
    lines = []
    for key, value in values.items():
        if value is None:
            lines.append(f"# {key}: not set")
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    return lines


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml_value(name)
