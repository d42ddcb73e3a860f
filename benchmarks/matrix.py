"""Every SCU against every SCP: the run every workload shares, cell by cell.

One SCP column at a time: its server is started (and restarted, noted, when
it crashes), then each of the column's cells runs a client against it and
records figures as they come.  An implementation that cannot load or start is
marked unavailable once, in the notes, and every cell that needs it says so
instead of failing.  A workload says what its columns serve and what a cell
measures by filling in the hooks of ``Matrix``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import ClassVar, Literal

from tests.interop.peers import ServerProcess, ServerStartError

from benchmarks.core import (
    IMPLEMENTATIONS,
    NOT_APPLICABLE,
    NOT_AVAILABLE,
    SUBJECT,
    Figure,
    WorkloadResult,
)
from benchmarks.processes import REPEAT_BELOW_SECONDS, REPEATS, Run, ScpUnusable, startup_seconds


class Matrix(ABC):
    """Runs every SCU against every SCP and records figures as they come."""

    # Progress lines: room for the longest SCU name, and for a cell's shape (0: no shapes).
    scu_width: ClassVar[int] = 10
    shape_width: ClassVar[int] = 5
    # Failed runs retried in one cell before it is given up.
    retries: ClassVar[int] = 1
    # Variants (an SCU or SCP in another set-up) and the implementation they load.
    aliases: ClassVar[Mapping[str, str]] = {}

    def __init__(self, result: WorkloadResult) -> None:
        self.result = result
        self.unavailable: dict[tuple[str, str], str] = {}

    # -- what a workload fills in --------------------------------------------------------
    @abstractmethod
    def cells(self) -> Iterable[tuple[str, str]]:
        """(SCU, shape) of every cell of a column, in the order they run."""

    @abstractmethod
    def keys(self, shape: str) -> tuple[str, ...]:
        """The metrics one cell of this shape records, in the order it records them."""

    @abstractmethod
    def start_scp(self, scp: str, *, restart: bool) -> ServerProcess:
        """A running SCP; may raise ``ServerStartError`` or ``ScpUnusable``."""

    @abstractmethod
    def cell(self, scu: str, scp: str, shape: str, server: ServerProcess) -> None:
        """Measure one cell whose SCU and SCP are both available, and record it."""

    def not_applicable(self, scu: str, scp: str, shape: str) -> str | None:
        """Why a cell is not measured by design (starting with ``NOT_APPLICABLE``), or None."""
        return None

    def end_column(self, scp: str) -> None:
        """Clean up after the column of ``scp``, its server stopped."""
        return None

    # -- the run ---------------------------------------------------------------------------
    def run(self, scps: Iterable[str] = IMPLEMENTATIONS) -> None:
        for scp in scps:
            server = self.start(scp)
            try:
                for scu, shape in self.cells():
                    server = self.revive(scp, server)
                    self.visit(scu, scp, shape, server)
            finally:
                if server is not None:
                    server.stop()
                self.end_column(scp)

    def visit(self, scu: str, scp: str, shape: str, server: ServerProcess | None) -> None:
        """Measure the cell, or record why not: not applicable, or a party is missing."""
        why = self.not_applicable(scu, scp, shape)
        if why is None and server is not None and not self.is_unavailable(scu, "SCU"):
            self.cell(scu, scp, shape, server)
        else:
            self.fail(scu, scp, shape, why or self.why(scu, scp))

    def start(self, scp: str, *, restart: bool = False) -> ServerProcess | None:
        if self.is_unavailable(scp, "SCP"):
            return None
        try:
            return self.start_scp(scp, restart=restart)
        except ServerStartError as exc:
            lines = str(exc).strip().splitlines()
            self.mark_unavailable(scp, "SCP", f"SCP did not start: {lines[-1]}")
        except ScpUnusable as exc:
            self.mark_unavailable(scp, "SCP", str(exc))
        return None

    def revive(self, scp: str, server: ServerProcess | None) -> ServerProcess | None:
        """A crashed SCP is reported once and restarted so the next cell still runs."""
        if server is None or server.alive:
            return server
        output = server.output().strip().splitlines()
        self.result.notes.append(
            f"{scp} SCP exited (code {server.returncode}) and was restarted: "
            f"{output[-1] if output else 'no output'}"
        )
        server.stop()
        return self.start(scp, restart=True)

    # -- availability ----------------------------------------------------------------------
    def is_unavailable(self, name: str, role: str) -> bool:
        return (self.aliases.get(name, name), role) in self.unavailable

    def why(self, scu: str, scp: str) -> str:
        for name, role in ((scu, "SCU"), (scp, "SCP")):
            if self.is_unavailable(name, role):
                return f"{NOT_AVAILABLE}: {self.aliases.get(name, name)} {role}"
        return "SCP not running"

    def mark_unavailable(self, name: str, role: str, error: str) -> None:
        impl = self.aliases.get(name, name)
        if (impl, role) not in self.unavailable:
            self.unavailable[impl, role] = error
            note = f"{impl}: {NOT_AVAILABLE}: {error}"
            self.result.notes.append(note)
            print(note, flush=True)

    def unloaded(self, scu: str, scp: str, run: Run) -> bool:
        """True when the SCU could not load: marked unavailable, and the run says so."""
        if not run.unavailable:
            return False
        self.mark_unavailable(scu, "SCU", f"SCU failed to load: {run.error}")
        run.error = self.why(scu, scp)
        return True

    # -- runs --------------------------------------------------------------------------------
    def measure(
        self, scu: str, scp: str, shape: str, attempt: Callable[[], Run]
    ) -> list[Run] | str:
        """Good runs (best of a few when short), or why there are none.

        Every failed run is noted, never silent: a rare race (pynetdicom has
        some) must not blank a cell, so a failure is retried up to ``retries``
        times; a failure after a good run ends the repeats.
        """
        what = f"{scu} SCU -> {scp} SCP {shape}".rstrip()
        runs: list[Run] = []
        failures = 0
        while len(runs) < REPEATS:
            run = attempt()
            if run.error is None:
                runs.append(run)
                if run.seconds >= REPEAT_BELOW_SECONDS:
                    break
                continue
            if run.unavailable:
                return run.error
            failures += 1
            last = bool(runs) or failures > self.retries
            action = "ended the repeats" if runs else "gave up" if last else "was retried"
            self.result.notes.append(f"{what}: a run failed and {action}: {run.error}")
            self.progress(scu, scp, shape, f"failed run: {run.error}")
            if last:
                return runs or run.error
        return runs

    # -- figures -----------------------------------------------------------------------------
    def add(self, figure: Figure) -> None:
        self.result.figures.append(figure)

    def fail(self, scu: str, scp: str, shape: str, error: str) -> None:
        for key in self.keys(shape):
            self.add(Figure(key, scu, scp, error=error))
        if not error.startswith((NOT_AVAILABLE, NOT_APPLICABLE)):
            self.progress(scu, scp, shape, f"FAILED: {error}")

    def progress(self, scu: str, scp: str, shape: str, text: str) -> None:
        cell = f"{scu:>{self.scu_width}} SCU -> {scp:<10} SCP"
        if self.shape_width:
            cell += f"  {shape:<{self.shape_width}}"
        print(f"  {cell} {text}", flush=True)

    # -- notes -------------------------------------------------------------------------------
    def note_startup(
        self,
        command: list[str],
        covers: str,
        shown: Mapping[str, str],
        subject: Literal["SCU", "SCP"] = "SCU",
    ) -> None:
        """dcmtk SCU figures include process start-up; show what they are without it.

        ``command`` runs the tool against a closed port (what its start-up
        ``covers``); ``shown`` formats each corrected figure by metric.  The
        dimsefsm figure compared is dimsefsm SCU -> dcmtk SCP as measured, or
        with ``subject="SCP"`` dcmtk SCU -> dimsefsm SCP, which carries the
        same start-up and gets the same correction.
        """
        startup = startup_seconds(command)
        if startup is None:
            return
        parts = []
        for key, form in shown.items():
            theirs = self._without_startup(key, "dcmtk", startup)
            if theirs is None:
                continue
            part = form.format(theirs)
            if subject == "SCP":
                ours = self._without_startup(key, SUBJECT, startup)
                label = f"{SUBJECT} SCP, same correction:"
            else:
                ours = self.result.value(key, SUBJECT, "dcmtk")
                label = f"{SUBJECT} SCU"
            if ours is not None:
                part += f" ({label} {ours / theirs:.2f}x that)"
            parts.append(part)
        text = (
            f"dcmtk {command[0]} start-up ({covers}; a run against a closed port): "
            f"{startup * 1e3:.0f} ms, included in every dcmtk SCU figure"
        )
        if parts:
            text += f"; without it dcmtk SCU -> dcmtk SCP: {'; '.join(parts)}"
        self.result.notes.append(text)

    def _without_startup(self, key: str, scp: str, startup: float) -> float | None:
        """The dcmtk SCU -> ``scp`` figure had the tool started in no time (also recorded)."""
        figure = self.result.figure(key, "dcmtk", scp)
        if figure is None or figure.value is None or figure.detail["seconds"] <= startup:
            return None
        seconds = figure.detail["seconds"]
        corrected = figure.value * seconds / (seconds - startup)
        figure.detail["value_without_startup"] = corrected
        return corrected


class RepeatingMatrix(Matrix):
    """A matrix whose cells are client runs, repeated while short and retried on failure."""

    @abstractmethod
    def attempt(self, scu: str, scp: str, shape: str, server: ServerProcess) -> Run:
        """One client run against ``server``, checked: its ``error`` says what went wrong."""

    @abstractmethod
    def record(self, scu: str, scp: str, shape: str, runs: list[Run]) -> None:
        """Figures from a cell's good runs (at least one)."""

    def cell(self, scu: str, scp: str, shape: str, server: ServerProcess) -> None:
        runs = self.measure(scu, scp, shape, lambda: self.attempt(scu, scp, shape, server))
        if isinstance(runs, str):
            self.fail(scu, scp, shape, runs)
        else:
            self.record(scu, scp, shape, runs)
