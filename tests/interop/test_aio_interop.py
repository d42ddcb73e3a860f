"""The asyncio client against real dcmtk peers on 127.0.0.1.

Echo and store go to ``storescp``; find, get and move to ``dcmqrscp`` (loaded
through ``storescu``, as a user would), whose C-MOVE destination is another
``storescp``.  What arrives is compared with the source files element by
element.  The servers fork, so several associations from one event loop are
served at the same time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydicom import Dataset, dcmread

from dimsefsm import AE, association
from dimsefsm.aio import AsyncAssociation, aio_associate
from dimsefsm.qr.registry import STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE
from dimsefsm.services.storage import StorageConfig
from dimsefsm.sop_class import CT_IMAGE_STORAGE, VERIFICATION
from tests.data.make import LARGE_PIXEL_BYTES, make_instance, write_instance
from tests.interop.peers import DcmtkServer, dcmqrscp_config, free_port, run_tool
from tests.interop.test_get_interop import assert_same_instance, received_by_uid
from tests.unit.test_aio import run, socket_closed

LOCALHOST = "127.0.0.1"
DCMQRSCP_AET = "COMMON"
DEST_AET = "STORESCP"
SUCCESS, PENDING = 0x0000, 0xFF00
T = TypeVar("T")


def scu(*contexts: str) -> AE:
    ae = AE("AIOSCU")
    for uid in contexts:
        ae.add_requested_context(uid)
    return ae


# -- storescp ----------------------------------------------------------------------------------
def test_echo_and_store_to_storescp(
    dcmtk_server: Callable[..., DcmtkServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Dataset, a small file, and a large file streamed from disk in batches."""
    monkeypatch.setattr(association, "STREAM_THRESHOLD", 64 * 1024)
    out = tmp_path / "out"
    out.mkdir()
    server = dcmtk_server(["storescp", "--fork", "-aet", DEST_AET, "-od", str(out)])
    instance = make_instance()
    small = write_instance(tmp_path / "small.dcm", make_instance())
    large = write_instance(tmp_path / "large.dcm", make_instance(pixel_bytes=LARGE_PIXEL_BYTES))

    async def main() -> tuple[AsyncAssociation, list[int]]:
        ae = scu(VERIFICATION, CT_IMAGE_STORAGE)
        async with await aio_associate(ae, LOCALHOST, server.port, ae_title=DEST_AET) as assoc:
            assert assoc.is_established, assoc.describe_failure()
            codes = [int((await assoc.send_c_echo()).Status)]
            for item in (instance, small, large):
                codes.append(int((await assoc.send_c_store(item)).Status))
        return assoc, codes

    assoc, codes = run(main)
    assert codes == [SUCCESS] * 4
    assert assoc.is_released and socket_closed(assoc)
    received = received_by_uid(out)
    assert sorted(received) == sorted(
        str(uid)
        for uid in (instance.SOPInstanceUID, *(dcmread(p).SOPInstanceUID for p in (small, large)))
    )
    for sent in (small, large):
        assert_same_instance(received[str(dcmread(sent).SOPInstanceUID)], sent)


def test_concurrent_stores_to_a_forking_storescp(
    dcmtk_server: Callable[..., DcmtkServer], tmp_path: Path
) -> None:
    """Eight associations from one loop, each storing two instances, all open at once."""
    out = tmp_path / "out"
    out.mkdir()
    server = dcmtk_server(["storescp", "--fork", "-aet", DEST_AET, "-od", str(out)])
    sources = [write_instance(tmp_path / f"{n}.dcm", make_instance()) for n in range(16)]

    async def main() -> list[list[int]]:
        ae = scu(CT_IMAGE_STORAGE)
        together = asyncio.Barrier(8)

        async def store(pair: list[Path]) -> list[int]:
            async with await aio_associate(ae, LOCALHOST, server.port, ae_title=DEST_AET) as one:
                assert one.is_established, one.describe_failure()
                async with asyncio.timeout(30):
                    await together.wait()
                return [int((await one.send_c_store(path)).Status) for path in pair]

        return await asyncio.gather(*(store(sources[n : n + 2]) for n in range(0, 16, 2)))

    assert run(main) == [[SUCCESS, SUCCESS]] * 8
    received = received_by_uid(out)
    assert sorted(received) == sorted(str(dcmread(p).SOPInstanceUID) for p in sources)
    for sent in sources:
        assert_same_instance(received[str(dcmread(sent).SOPInstanceUID)], sent)


# -- dcmqrscp ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Archive:
    server: DcmtkServer
    destination: DcmtkServer
    destination_dir: Path
    study_uid: str
    files: dict[str, Path]  # SOP Instance UID -> source file


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """dcmqrscp holding one study of three CT instances (the second large: many 16 KB PDUs)."""
    sources = tmp_path_factory.mktemp("sources")
    first = make_instance()
    files: dict[str, Path] = {}
    for number in (1, 2, 3):
        ds = make_instance(
            pixel_bytes=LARGE_PIXEL_BYTES if number == 2 else 8 * 1024,
            PatientID="PID-AIO",
            StudyInstanceUID=first.StudyInstanceUID,
            SeriesInstanceUID=first.SeriesInstanceUID,
            InstanceNumber=number,
        )
        files[str(ds.SOPInstanceUID)] = write_instance(sources / f"i{number}.dcm", ds)
    destination_dir = tmp_path_factory.mktemp("moved")
    destination = DcmtkServer(
        ["storescp", "--fork", "-aet", DEST_AET, "-od", str(destination_dir)], free_port()
    )
    port = free_port()
    config = dcmqrscp_config(
        tmp_path_factory.mktemp("dcmqrscp"),
        port,
        [DCMQRSCP_AET],
        {DEST_AET: (LOCALHOST, destination.port)},
    )
    with destination, DcmtkServer(["dcmqrscp", "-c", str(config)], port) as server:
        loaded = run_tool(
            ["storescu", "-aec", DCMQRSCP_AET, LOCALHOST, str(port), *map(str, files.values())]
        )
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        assert isinstance(server, DcmtkServer) and isinstance(destination, DcmtkServer)
        yield Archive(server, destination, destination_dir, str(first.StudyInstanceUID), files)


def identifier(level: str, study_uid: str = "", **keys: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.StudyInstanceUID = study_uid
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


async def find_uids(port: int, study_uid: str) -> tuple[list[int], list[str]]:
    ae = scu(STUDY_ROOT_FIND)
    async with await aio_associate(ae, LOCALHOST, port, ae_title=DCMQRSCP_AET) as assoc:
        assert assoc.is_established, assoc.describe_failure()
        query = identifier("IMAGE", study_uid, SeriesInstanceUID="", SOPInstanceUID="")
        responses = [pair async for pair in assoc.send_c_find(query, STUDY_ROOT_FIND)]
    codes = [int(status.Status) for status, _ in responses]
    return codes, [str(found.SOPInstanceUID) for _, found in responses if found is not None]


async def get_study(port: int, study_uid: str, out: Path) -> list[Dataset]:
    ae = scu(STUDY_ROOT_GET, CT_IMAGE_STORAGE)
    ae.propose_role(CT_IMAGE_STORAGE, scu_role=False, scp_role=True)
    ae.storage = StorageConfig(mode="file", directory=out)
    async with await aio_associate(ae, LOCALHOST, port, ae_title=DCMQRSCP_AET) as assoc:
        assert assoc.is_established, assoc.describe_failure()
        query = identifier("STUDY", study_uid)
        return [status async for status, _ in assoc.send_c_get(query, STUDY_ROOT_GET)]


def test_find_against_dcmqrscp(archive: Archive) -> None:
    codes, uids = run(lambda: find_uids(archive.server.port, archive.study_uid))
    assert codes == [PENDING] * 3 + [SUCCESS]
    assert sorted(uids) == sorted(archive.files)


def test_get_from_dcmqrscp_into_file_storage(archive: Archive, tmp_path: Path) -> None:
    statuses = run(lambda: get_study(archive.server.port, archive.study_uid, tmp_path))
    assert [int(s.Status) for s in statuses] == [PENDING] * 3 + [SUCCESS]
    final = statuses[-1]
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (3, 0)
    received = received_by_uid(tmp_path)
    assert sorted(received) == sorted(archive.files)
    for uid, path in received.items():
        assert_same_instance(path, archive.files[uid])


def test_move_from_dcmqrscp_to_storescp(archive: Archive) -> None:
    for leftover in archive.destination_dir.iterdir():
        leftover.unlink()

    async def main() -> list[int]:
        ae = scu(STUDY_ROOT_MOVE)
        async with await aio_associate(
            ae, LOCALHOST, archive.server.port, ae_title=DCMQRSCP_AET
        ) as assoc:
            query = identifier("STUDY", archive.study_uid)
            responses = assoc.send_c_move(query, DEST_AET, STUDY_ROOT_MOVE)
            return [int(status.Status) async for status, _ in responses]

    assert run(main) == [PENDING] * 3 + [SUCCESS]
    received = received_by_uid(archive.destination_dir)
    assert sorted(received) == sorted(archive.files)
    for uid, path in received.items():
        assert_same_instance(path, archive.files[uid])


def test_finds_and_gets_at_once_against_dcmqrscp(archive: Archive, tmp_path: Path) -> None:
    """Three C-FINDs and two C-GETs on five associations, interleaved in one loop."""
    port, study = archive.server.port, archive.study_uid
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()

    async def main() -> tuple[list[Any], list[Any]]:
        results = await asyncio.gather(
            *(find_uids(port, study) for _ in range(3)),
            *(get_study(port, study, folder) for folder in folders),
        )
        return results[:3], results[3:]

    found, got = run(main)
    assert [codes for codes, _ in found] == [[PENDING] * 3 + [SUCCESS]] * 3
    assert all(sorted(uids) == sorted(archive.files) for _, uids in found)
    assert [[int(s.Status) for s in statuses] for statuses in got] == [
        [PENDING] * 3 + [SUCCESS]
    ] * 2
    for folder in folders:
        assert sorted(received_by_uid(folder)) == sorted(archive.files)
