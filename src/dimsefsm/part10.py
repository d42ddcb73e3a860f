"""DICOM Part-10 files without pydicom: meta header in and out, data set bytes streamed.

The Storage SCU sends a file's data set as it is on disk when the negotiated
transfer syntax equals the file's, and the Storage SCP writes a received data set
to disk fragment by fragment. Neither needs more than the File Meta Information
(group 0002, always Explicit VR Little Endian, PS3.10 section 7.1), which a few
`struct` calls read and write far faster than a general parser; a 500 MB
instance is never held in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from dimsefsm.uid import is_valid_uid

__all__ = [
    "Part10Error",
    "Part10Info",
    "Part10Writer",
    "build_file_meta",
    "iter_file_chunks",
    "read_dataset_bytes",
    "read_part10",
    "read_part10_info",
    "remove_stale_temp_files",
    "safe_uid_filename",
]

PREAMBLE_LENGTH = 128
MAGIC = b"DICM"
META_START = PREAMBLE_LENGTH + len(MAGIC)

# VRs whose explicit-VR header has two reserved bytes and a 4-byte length (PS3.5 7.1.2).
_SHORT_VRS = frozenset(b"AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US".split())
_UNDEFINED_LENGTH = 0xFFFFFFFF
_META_GROUP = 0x0002
_DEFLATED_SYNTAXES = frozenset(
    {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95", "1.2.840.10008.1.2.4.205"}
)

# Most meta groups are a few hundred bytes; one read of this size covers them.
_FIRST_READ = 8192
# Files up to this size are read whole in one call when their data set is wanted.
_WHOLE_READ = 256 << 10
# A meta group larger than this is not a real file; refuse rather than read it all.
_MAX_META_BYTES = 16 << 20

_GROUP_LENGTH = 0x0000
_VERSION = 0x0001
_SOP_CLASS = 0x0002
_SOP_INSTANCE = 0x0003
_TRANSFER_SYNTAX = 0x0010
_IMPLEMENTATION_CLASS = 0x0012
_IMPLEMENTATION_VERSION = 0x0013
_SOURCE_AE = 0x0016

_PACK_SHORT_HEADER = struct.Struct("<HH2sH").pack
_PACK_LONG_HEADER = struct.Struct("<HH2s2xL").pack
_UNPACK_TAG = struct.Struct("<HH").unpack_from
_UNPACK_US = struct.Struct("<H").unpack_from
_UNPACK_UL = struct.Struct("<L").unpack_from


class Part10Error(ValueError):
    """The file is not a DICOM Part-10 file this module can read (no DICM, bad meta group)."""


@dataclass(frozen=True, slots=True)
class Part10Info:
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    # Byte offset of the first data set element, just after the meta group.
    dataset_offset: int
    file_size: int

    @property
    def dataset_length(self) -> int:
        return self.file_size - self.dataset_offset


# --------------------------------------------------------------------------- reading


class _NeedMore(Exception):
    """The meta group continues past the bytes read so far."""


def read_part10_info(path: str | os.PathLike[str]) -> Part10Info:
    """Parse preamble, "DICM" and group 0002; `OSError` if the file cannot be opened."""
    with open(path, "rb") as file:
        return _read_info(file, Path(path))


def read_part10(path: str | os.PathLike[str]) -> tuple[Part10Info, bytes]:
    """Meta facts and the whole data set with one open: the small-file fast path."""
    info, dataset = read_part10_up_to(path, None)
    assert dataset is not None  # no limit: the data set always comes back
    return info, dataset


def read_part10_up_to(
    path: str | os.PathLike[str], limit: int | None
) -> tuple[Part10Info, bytes | None]:
    """Meta facts, and the data set too when it is at most ``limit`` bytes (None: any size).

    One open for both: a C-STORE SCU sending thousands of small files from a
    C-GET/C-MOVE handler would otherwise open and parse each header twice.  A
    small file is read whole with one ``read`` call (no buffered reader, no
    seeks): for the typical CT slice, the syscalls were most of the cost.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        if size <= _WHOLE_READ:
            return _split_whole(_read_exactly(fd, size), Path(path), limit)
    finally:
        os.close(fd)
    with open(path, "rb") as file:
        info = _read_info(file, Path(path))
        if limit is not None and info.dataset_length > limit:
            return info, None
        file.seek(info.dataset_offset)
        return info, file.read()


def _read_exactly(fd: int, size: int) -> bytes:
    """The file's ``size`` bytes; fewer if it shrank meanwhile (the parse then says so)."""
    data = os.read(fd, size)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size and (more := os.read(fd, size - got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _split_whole(data: bytes, path: Path, limit: int | None) -> tuple[Part10Info, bytes | None]:
    try:
        values, dataset_offset = _parse_meta(data, True, path)
    except _NeedMore:
        raise Part10Error(f"{path}: file ends inside the file meta group") from None
    info = _info_from(values, dataset_offset, len(data), path)
    if limit is not None and info.dataset_length > limit:
        return info, None
    return info, data[dataset_offset:]


def read_dataset_bytes(info: Part10Info) -> bytes:
    """The data set exactly as stored (still deflated for a deflated syntax)."""
    with open(info.path, "rb") as file:
        file.seek(info.dataset_offset)
        return file.read()


def iter_file_chunks(
    path: str | os.PathLike[str], offset: int, chunk_size: int = 1 << 20
) -> Iterator[bytes]:
    """Yield the file from `offset` to its end in pieces of at most `chunk_size` bytes."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    with open(path, "rb") as file:
        file.seek(offset)
        while chunk := file.read(chunk_size):
            yield chunk


def _read_info(file: BinaryIO, path: Path) -> Part10Info:
    file_size = os.fstat(file.fileno()).st_size
    wanted = _FIRST_READ
    while True:
        file.seek(0)
        head = file.read(wanted)
        at_eof = len(head) >= file_size
        try:
            values, dataset_offset = _parse_meta(head, at_eof, path)
        except _NeedMore:
            if at_eof:
                raise Part10Error(f"{path}: file ends inside the file meta group") from None
            if wanted >= _MAX_META_BYTES:
                raise Part10Error(
                    f"{path}: file meta group is larger than {_MAX_META_BYTES} bytes"
                ) from None
            wanted *= 4
            continue
        break
    return _info_from(values, dataset_offset, file_size, path)


def _info_from(
    values: dict[int, bytes], dataset_offset: int, file_size: int, path: Path
) -> Part10Info:
    transfer_syntax = _uid_value(values, _TRANSFER_SYNTAX, "Transfer Syntax UID", path)
    sop_class_uid = _uid_value(values, _SOP_CLASS, "Media Storage SOP Class UID", path)
    sop_instance_uid = _uid_value(values, _SOP_INSTANCE, "Media Storage SOP Instance UID", path)
    return Part10Info(
        path=path,
        sop_class_uid=sop_class_uid,
        sop_instance_uid=sop_instance_uid,
        transfer_syntax=transfer_syntax,
        dataset_offset=dataset_offset,
        file_size=file_size,
    )


def _uid_value(values: dict[int, bytes], element: int, name: str, path: Path) -> str:
    raw = values.get(element)
    if raw is None:
        raise Part10Error(f"{path}: file meta group has no {name} (0002,{element:04X})")
    try:
        text = raw.decode("ascii").rstrip("\x00 ")
    except UnicodeDecodeError:
        raise Part10Error(f"{path}: {name} (0002,{element:04X}) is not ASCII") from None
    if not text:
        raise Part10Error(f"{path}: {name} (0002,{element:04X}) is empty")
    return text


def _parse_meta(head: bytes, at_eof: bool, path: Path) -> tuple[dict[int, bytes], int]:
    """Return the group 0002 values by element number and the offset just after the group.

    The group ends at the offset (0002,0000) announces. If that value is wrong (seen
    in the wild) the elements do not land on it, and the first non-0002 tag ends the
    group instead, as for files without (0002,0000).
    """
    if len(head) < META_START:
        raise Part10Error(f"{path}: {len(head)} bytes is too short for a Part-10 file")
    if head[PREAMBLE_LENGTH:META_START] != MAGIC:
        raise Part10Error(f"{path}: no 'DICM' prefix at byte 128, not a DICOM Part-10 file")
    values: dict[int, bytes] = {}
    offset = META_START
    announced_end: int | None = None
    size = len(head)
    while True:
        if offset == announced_end and not _meta_continues(head, offset, values):
            return values, offset
        if offset + 4 > size:
            if at_eof and offset == size:
                break
            if at_eof:
                raise Part10Error(f"{path}: file ends inside the file meta group")
            raise _NeedMore
        group, element = _UNPACK_TAG(head, offset)
        if group != _META_GROUP:
            break
        if offset + 8 > size:
            raise _NeedMore
        vr = head[offset + 4 : offset + 6]
        if vr in _SHORT_VRS:
            (length,) = _UNPACK_US(head, offset + 6)
            header = 8
        elif vr.isalpha() and vr.isupper():
            if offset + 12 > size:
                raise _NeedMore
            (length,) = _UNPACK_UL(head, offset + 8)
            header = 12
        else:
            raise Part10Error(
                f"{path}: file meta element (0002,{element:04X}) at byte {offset} has no "
                f"explicit VR ({vr!r}); the meta group must be Explicit VR Little Endian"
            )
        if length == _UNDEFINED_LENGTH:
            raise Part10Error(
                f"{path}: file meta element (0002,{element:04X}) has undefined length"
            )
        end = offset + header + length
        if end > size:
            raise _NeedMore
        value = head[offset + header : end]
        if element == _GROUP_LENGTH and vr == b"UL" and length == 4 and offset == META_START:
            announced_end = end + _UNPACK_UL(value)[0]
        values[element] = value
        offset = end
    if not values:
        raise Part10Error(f"{path}: 'DICM' is not followed by a file meta group (0002,xxxx)")
    return values, offset


def _meta_continues(head: bytes, offset: int, values: dict[int, bytes]) -> bool:
    """True if a group-0002 tag follows the announced end of a too-short group length.

    A deflated data set may start with the bytes 02 00 by chance; there the
    announced length is trusted once the transfer syntax has been read.
    """
    if offset + 4 > len(head) or _UNPACK_TAG(head, offset)[0] != _META_GROUP:
        return False
    syntax = values.get(_TRANSFER_SYNTAX)
    return syntax is None or syntax.rstrip(b"\x00 ").decode("latin-1") not in _DEFLATED_SYNTAXES


# --------------------------------------------------------------------------- writing


def _meta_element(element: int, vr: bytes, value: bytes) -> bytes:
    if vr in _SHORT_VRS:
        return _PACK_SHORT_HEADER(_META_GROUP, element, vr, len(value)) + value
    return _PACK_LONG_HEADER(_META_GROUP, element, vr, len(value)) + value


def _uid_bytes(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw


def _text_bytes(text: str) -> bytes:
    raw = text.encode("ascii")
    return raw + b" " if len(raw) % 2 else raw


def build_file_meta(
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax: str,
    *,
    implementation_class_uid: str,
    implementation_version_name: str,
    source_ae: str | None = None,
) -> bytes:
    """Zero preamble, "DICM" and a complete group 0002 with its group length.

    Values must be ASCII (`UnicodeEncodeError`, a `ValueError`, otherwise); they
    are written as given, padded to even length as PS3.5 requires.
    """
    body = b"".join(
        (
            _meta_element(_VERSION, b"OB", b"\x00\x01"),
            _meta_element(_SOP_CLASS, b"UI", _uid_bytes(sop_class_uid)),
            _meta_element(_SOP_INSTANCE, b"UI", _uid_bytes(sop_instance_uid)),
            _meta_element(_TRANSFER_SYNTAX, b"UI", _uid_bytes(transfer_syntax)),
            _meta_element(_IMPLEMENTATION_CLASS, b"UI", _uid_bytes(implementation_class_uid)),
            _meta_element(_IMPLEMENTATION_VERSION, b"SH", _text_bytes(implementation_version_name)),
            _meta_element(_SOURCE_AE, b"AE", _text_bytes(source_ae)) if source_ae else b"",
        )
    )
    group_length = _meta_element(_GROUP_LENGTH, b"UL", struct.pack("<L", len(body)))
    return bytes(PREAMBLE_LENGTH) + MAGIC + group_length + body


_FILENAME_SAFE_BYTES = frozenset(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-"
)
_MAX_FILENAME_STEM = 128
_NOT_A_UID_PREFIX = "x_"
TEMP_SUFFIX = ".part"
# What Part10Writer names its temporary files: hidden, a random tag, the suffix.
_TEMP_NAME = re.compile(rf"\..+\.[0-9a-f]{{12}}{re.escape(TEMP_SUFFIX)}")


def safe_uid_filename(uid: str, suffix: str = ".dcm") -> str:
    """A file name for a UID: injective, and it cannot escape the directory or hide itself.

    Two different UIDs must never share a file, or storing one overwrites the
    other.  A valid UID (PS3.5 9.1, trailing NUL padding ignored) is its own
    name: it holds only digits and dots and never starts with a dot.  Any
    other value from the wire gets the prefix ``x_`` (no valid UID has an
    underscore, so the two kinds cannot meet) and every byte outside
    ``[0-9A-Za-z.-]`` written as ``_`` and two hex digits, ``_`` itself
    included, so distinct values stay distinct.  An escaped value longer than
    128 characters is named by its SHA-256 instead.
    """
    text = uid.rstrip("\x00")
    if not text:
        raise ValueError(f"cannot build a file name from UID {uid!r}")
    if is_valid_uid(text):
        return text + suffix
    raw = text.encode("utf-8", "surrogateescape")
    escaped = "".join(chr(b) if b in _FILENAME_SAFE_BYTES else f"_{b:02x}" for b in raw)
    if len(escaped) > _MAX_FILENAME_STEM - len(_NOT_A_UID_PREFIX):
        escaped = "sha256_" + hashlib.sha256(raw).hexdigest()
    return _NOT_A_UID_PREFIX + escaped + suffix


def remove_stale_temp_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files a killed writer left in ``directory``; return their paths.

    A :class:`Part10Writer` that is not closed or aborted (the process was
    killed) leaves its hidden ``.NAME.XXXXXXXXXXXX.part`` file behind, never
    to be completed.  Call this at start, before any writer of this process
    opens one in the same directory.
    """
    removed = []
    for path in Path(directory).glob(f".*{TEMP_SUFFIX}"):
        if _TEMP_NAME.fullmatch(path.name) and path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


_WRITE_BUFFER = 256 * 1024


class Part10Writer:
    """A data set sink that becomes a Part-10 file only once the data set is complete.

    Bytes go to a hidden temporary file in the target directory (so the final
    rename stays on one file system and is atomic); `close()` renames it to the
    final name, `abort()` deletes it. Used as a context manager, leaving the block
    without `close()` aborts, so an exception or a peer's A-ABORT in the middle of
    a data set never leaves a partial file behind.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        sop_class_uid: str,
        sop_instance_uid: str,
        transfer_syntax: str,
        *,
        implementation_class_uid: str,
        implementation_version_name: str,
        source_ae: str | None = None,
        filename: str | None = None,
        fsync: bool = False,
    ) -> None:
        meta = build_file_meta(
            sop_class_uid,
            sop_instance_uid,
            transfer_syntax,
            implementation_class_uid=implementation_class_uid,
            implementation_version_name=implementation_version_name,
            source_ae=source_ae,
        )
        self.directory = Path(directory)
        name = filename if filename is not None else safe_uid_filename(sop_instance_uid)
        if not name or Path(name).name != name or name in (".", ".."):
            raise ValueError(f"filename must be a plain file name, got {name!r}")
        self.path = self.directory / name
        self.meta_length = len(meta)
        self.bytes_written = 0  # data set bytes, the meta header not included
        self._fsync = fsync
        self._synced = False  # sync() ran and nothing was written since
        self._closed = False
        self.temp_path, self._file = self._create_temp(safe_uid_filename(sop_instance_uid, ""))
        try:
            self._file.write(meta)
        except BaseException:
            self.abort()
            raise

    def _create_temp(self, stem: str) -> tuple[Path, BinaryIO]:
        # os.open with O_EXCL and mode 0o666 (not mkstemp's 0o600) so the final
        # file gets the same permissions as any file the user creates.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        while True:
            temp_path = self.directory / f".{stem}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
            try:
                fd = os.open(temp_path, flags, 0o666)
            except FileExistsError:
                continue
            return temp_path, open(fd, "wb", buffering=_WRITE_BUFFER)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def dataset_offset(self) -> int:
        """Where the data set starts in the file: the length of preamble and meta group."""
        return self.meta_length

    def flush(self) -> None:
        """Hand buffered bytes to the OS, so the temporary file can be re-read before close()."""
        if self._closed:
            raise ValueError(f"flush of a closed Part10Writer for {self.path}")
        self._file.flush()

    def sync(self) -> None:
        """Flush and fsync the data written so far (``close()`` then has little left to sync).

        Lets a caller make the bytes durable before it takes a lock under which
        it renames the file, so concurrent writers do not wait on each other's disk.
        """
        self.flush()
        os.fsync(self._file.fileno())
        self._synced = True

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise ValueError(f"write to a closed Part10Writer for {self.path}")
        self._synced = False
        self.bytes_written += self._file.write(chunk)

    def close(self) -> Path:
        """Finish the file and move it to its final name; return that path."""
        if self._closed:
            raise ValueError(f"Part10Writer for {self.path} is already closed")
        try:
            self._file.flush()
            if self._fsync and not self._synced:
                os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.temp_path, self.path)
            if self._fsync:
                _fsync_directory(self.directory)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Drop the temporary file; safe to call more than once, a no-op after close()."""
        if self._closed:
            return
        self._closed = True
        # Closing flushes, which fails again after a failed write (disk full):
        # the temporary file goes either way.
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp_path)

    def __enter__(self) -> Part10Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.abort()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Part10Writer {self.path} {state} {self.bytes_written} bytes>"


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk (POSIX).
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
