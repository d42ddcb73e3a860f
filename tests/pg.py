"""A throwaway PostgreSQL cluster for the tests: Debian's binaries, a temp directory, a free port.

The index is meant to be shared by several qrscp processes through
PostgreSQL, so the database tests run against a real server as well as
against SQLite.  ``initdb`` refuses to run as root: as root, the cluster
belongs to an unprivileged system user (``postgres`` when Debian's package
made one, ``nobody`` otherwise) and every server program runs as that user
through ``runuser``.  The server listens on 127.0.0.1 only, its unix socket
stays in the cluster directory, authentication is ``trust`` and durability
is off (``fsync``): the data is thrown away at the end.  ``pg_ctl -w`` waits
for the server to accept connections, so nothing sleeps.

Each test gets its own schema (``fresh_url``): creating one costs a
millisecond where a database costs a copy of the template.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import pytest
from sqlalchemy import create_engine, text

from dimsefsm.archive.location import default_url
from tests.interop.peers import free_port

__all__ = ["BACKENDS", "PostgresCluster", "binaries", "index_url"]

BACKENDS: Final = ("sqlite", "postgresql")

SUPERUSER = "dimsefsm"
_USERS = ("postgres", "nobody")


def binaries() -> Path | None:
    """The directory of Debian's newest PostgreSQL server programs (or ``pg_ctl`` on PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parent.parent.name),
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _owner() -> str | None:
    """The user the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in _USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError(f"running as root and none of the users {_USERS} exists for initdb")


class PostgresCluster:
    """``start()`` initialises and starts a cluster; ``stop()`` stops it and removes it."""

    def __init__(self) -> None:
        bin_dir = binaries()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (make system installs postgresql)")
        self.bin_dir = bin_dir
        self.owner = _owner()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="dimsefsm-pg-"))
        self.data = self.root / "data"
        self._schemas = itertools.count(1)
        self._started = False

    def _run(self, program: str, *args: str) -> None:
        command: Sequence[str] = [str(self.bin_dir / program), *args]
        if self.owner is not None:
            command = ["runuser", "-u", self.owner, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip()}")

    def start(self) -> PostgresCluster:
        if self.owner is not None:
            shutil.chown(self.root, self.owner)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = " ".join(
            (
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.root}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=300",
                "-c shared_buffers=32MB",
            )
        )
        log = self.root / "server.log"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(log), "-o", options, "-w", "start")
        self._started = True
        return self

    def stop(self) -> None:
        try:
            if self._started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
                self._started = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def fresh_url(self) -> str:
        """A URL whose tables land in a new, empty schema of their own."""
        name = f"t{next(self._schemas)}"
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f"CREATE SCHEMA {name}"))
        finally:
            engine.dispose()
        return f"{self.url()}?options=-csearch_path%3D{name}"


def index_url(backend: str, directory: Path, request: pytest.FixtureRequest) -> str:
    """An empty index database on ``backend``: SQLite's default file for ``directory``, or a
    fresh schema of the session's cluster (fixture ``postgres``, started when first asked)."""
    if backend == "sqlite":
        return default_url(directory)
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.fresh_url()
