"""The C-STORE SCP's file sink: received data sets written to temporary Part-10 files.

File I/O lives here, on the transport side; the storage service in the core
only sees an :class:`~dimsefsm.services.storage.InstanceSink`.  ``ae.AE``
injects :func:`open_file_sink` into every association it builds, so
``StorageConfig(mode="file", directory=...)`` works as before.

The guarantees stay the sink's: a data set is written fragment by fragment
(never held whole in memory), a failed write keeps the first error and drops
the temporary file, and only :meth:`FileSink.commit` renames a complete file
into place, so no half-written file is ever visible under its final name.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from dimsefsm.assoc.negotiation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from dimsefsm.datasets import DatasetChecker, DatasetDecodeError
from dimsefsm.part10 import Part10Writer
from dimsefsm.services.storage import InstanceSink, StorageConfig
from dimsefsm.uid import uid_problem


class FileSink(InstanceSink):
    """Reassembler sink writing a C-STORE data set to a temporary Part-10 file.

    Each fragment is written and structure-checked as it arrives, so even a
    500 MB instance is never held in memory.  ``close()`` only ends the
    transfer; the SCP decides afterwards whether the file is committed
    (renamed into place) or discarded.

    Nothing is written for a request whose UIDs are not UIDs (the SCP refuses
    it), and a failed disk write is kept in ``write_error`` rather than raised:
    the rest of the data set is still received (and dropped) so that the
    association stays in step, and the SCP answers Out of Resources.
    """

    def __init__(
        self,
        directory: Path,
        command: dict[str, Any],
        transfer_syntax: str,
        source_ae: str | None,
        validate: bool = True,
        fsync: bool = False,
    ) -> None:
        self.writer: Part10Writer | None = None
        self.write_error: OSError | None = None
        self.checker: DatasetChecker | None = None
        self.error: DatasetDecodeError | None = None
        self.path: Path | None = None
        self.fsync = fsync
        sop_class = command.get("AffectedSOPClassUID")
        sop_instance = command.get("AffectedSOPInstanceUID")
        if uid_problem(sop_class) or uid_problem(sop_instance):
            return  # refused by the SCP (invalid_uid, mistyped): nothing to keep
        try:
            self.writer = Part10Writer(
                directory,
                str(sop_class),
                str(sop_instance),
                transfer_syntax,
                implementation_class_uid=IMPLEMENTATION_CLASS_UID,
                implementation_version_name=IMPLEMENTATION_VERSION_NAME,
                source_ae=source_ae,
                fsync=fsync,
            )
        except OSError as exc:
            self.write_error = exc
            return
        self.checker = DatasetChecker(transfer_syntax) if validate else None

    @property
    def temp_path(self) -> Path | None:
        return self.writer.temp_path if self.writer is not None else None

    def write(self, data: bytes) -> None:
        if self.writer is None:
            return
        try:
            self.writer.write(data)
        except OSError as exc:
            self._failed(exc)
            return
        if self.checker is not None:
            try:
                self.checker.feed(data)
            except DatasetDecodeError as exc:
                self.error, self.checker = exc, None

    def _failed(self, exc: OSError) -> None:
        """Keep the first write error and drop the temporary file: it can never be complete."""
        self.write_error = exc
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
        self.checker = None

    def close(self) -> FileSink:
        """The transfer ended: hand the buffered bytes to the OS, so the handler can read them.

        With ``fsync`` they are made durable here, before the handler runs: an
        archive that commits under a lock then holds it only for the rename.
        """
        if self.writer is not None:
            try:
                if self.fsync:
                    self.writer.sync()
                else:
                    self.writer.flush()
            except OSError as exc:
                self._failed(exc)
        return self

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()

    def check(self) -> None:
        """Raise ``DatasetDecodeError`` if the data set was not well formed."""
        if self.error is not None:
            raise self.error
        if self.checker is not None:
            self.checker.finish()

    def commit(self) -> Path:
        """Rename the complete file into place (fsync'd first if asked); ``OSError`` if not."""
        if self.path is not None:
            return self.path
        if self.writer is None:
            raise self.write_error or OSError(errno.EIO, "no file was written")
        try:
            self.path = self.writer.close()
        except OSError as exc:
            self._failed(exc)
            raise
        return self.path


def open_file_sink(
    config: StorageConfig, command: dict[str, Any], transfer_syntax: str, source_ae: str | None
) -> FileSink:
    """The :data:`~dimsefsm.services.storage.SinkOpener` of file mode."""
    assert config.directory is not None
    return FileSink(
        config.directory,
        command,
        transfer_syntax,
        source_ae,
        config.validate,
        fsync=config.fsync,
    )
