"""Two ``dimsefsm qrscp`` processes on one PostgreSQL index and one storage tree (issue 13.5).

A PACS cluster shares one database between nodes: what one node stores,
another finds and retrieves, and the one-place-per-SOP-Instance-UID rule
holds across processes when both file the same UID into two studies at once
(the database's unique key and transactions decide, no lock of ours is shared).
dcmtk's storescu, findscu and getscu drive the two servers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydicom import dcmread

from tests.data.make import make_instance, make_study, write_instance, write_study
from tests.interop.peers import LOCALHOST, DimsefsmServer, run_tools_at_once
from tests.interop.test_qrscp_integrity import QR_AET, STORESCU, dcmtk_store, find_images, get_study
from tests.pg import PostgresCluster


def two_nodes(
    dimsefsm_server: Callable[..., DimsefsmServer], postgres: PostgresCluster, store: Path
) -> tuple[DimsefsmServer, DimsefsmServer]:
    url = postgres.fresh_url()
    args = ("-aet", QR_AET, "-od", str(store), "--database", url)
    return dimsefsm_server("qrscp", *args), dimsefsm_server("qrscp", *args)


def test_a_store_into_one_node_is_found_and_retrieved_from_the_other(
    dimsefsm_server: Callable[..., DimsefsmServer], postgres: PostgresCluster, tmp_path: Path
) -> None:
    first, second = two_nodes(dimsefsm_server, postgres, tmp_path / "store")
    study = make_study(4, n_series=2, patient_name="Shared^Index")
    files = write_study(tmp_path / "in", study)
    log = dcmtk_store(first.port, *files)
    assert log.count("Received Store Response (Success)") == 4, log
    wanted = sorted(str(ds.SOPInstanceUID) for ds in study)
    found = find_images(second.port, tmp_path / "find", PatientName="")
    assert sorted(str(ds.SOPInstanceUID) for ds in found) == wanted
    assert {str(ds.PatientName) for ds in found} == {"Shared^Index"}
    got = get_study(second.port, str(study[0].StudyInstanceUID), tmp_path / "get")
    assert sorted(str(ds.SOPInstanceUID) for ds in got) == wanted
    assert not list((tmp_path / "store").glob("**/*.part"))


def test_two_nodes_storing_one_uid_into_two_studies_at_once_keep_one(
    dimsefsm_server: Callable[..., DimsefsmServer], postgres: PostgresCluster, tmp_path: Path
) -> None:
    """Item 11.7 across processes: for each UID exactly one node's store wins, the other is
    refused (0x0117), and both nodes answer the same single place for it."""
    store = tmp_path / "store"
    nodes = two_nodes(dimsefsm_server, postgres, store)
    rounds = 12
    commands: list[list[str]] = []
    for side, node in zip("AB", nodes, strict=True):
        (tmp_path / side).mkdir()
        files = [
            write_instance(
                tmp_path / side / f"{n}.dcm",
                make_instance(
                    sop_instance_uid=f"1.2.3.9.{n + 1}",
                    PatientID=f"P{side}",
                    StudyInstanceUID=f"1.2.3.10.{ord(side)}",
                ),
            )
            for n in range(rounds)
        ]
        commands.append(
            [
                STORESCU,
                "-v",
                "--no-halt",
                "-aec",
                QR_AET,
                LOCALHOST,
                str(node.port),
                *map(str, files),
            ]
        )
    logs = run_tools_at_once(commands, timeout=60)
    successes = sum(log.count("Received Store Response (Success)") for log in logs)
    refusals = sum(log.count("Received Store Response (Unknown Status: 0x117)") for log in logs)
    assert (successes, refusals) == (rounds, rounds), logs
    answers = [find_images(node.port, tmp_path / f"find{n}") for n, node in enumerate(nodes)]
    places = [{str(ds.SOPInstanceUID): str(ds.PatientID) for ds in found} for found in answers]
    assert places[0] == places[1] and len(places[0]) == rounds
    on_disk = {
        str(ds.SOPInstanceUID): str(ds.PatientID)
        for ds in (dcmread(path, stop_before_pixels=True) for path in store.rglob("*.dcm"))
    }
    assert on_disk == places[0]  # every file is the one the index names
