"""``dimsefsm qrscp`` over its index database, driven by dcmtk (issue 13 items 1-3).

``--import DIR`` indexes files from elsewhere where they are (a torn one is
refused with a log line), a restart answers from the database without the
files being readable, ``--database URL`` puts the index where it says, and a
database of a newer schema stops the start with a clear message.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import update

from dimsefsm.archive.db.schema import SCHEMA_VERSION, open_engine, schema_table
from tests.data.make import make_study, write_study
from tests.interop.peers import DimsefsmServer
from tests.interop.test_qrscp_integrity import QR_AET, dcmtk_store, find_images


def test_import_then_restart_answers_from_the_database(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    study = make_study(4, n_series=2, patient_name="Imported^Once")
    files = write_study(elsewhere, study)
    torn = files[-1]
    with torn.open("r+b") as file:
        file.truncate(torn.stat().st_size - 100)
    store = tmp_path / "store"
    args = ("-aet", QR_AET, "-od", str(store))
    server = dimsefsm_server("qrscp", *args, "--import", str(elsewhere))
    assert f"not indexed: {torn}: data set is not complete" in server.output()
    wanted = sorted(str(ds.SOPInstanceUID) for ds in study[:3])
    found = find_images(server.port, tmp_path / "find1")
    assert sorted(str(ds.SOPInstanceUID) for ds in found) == wanted
    server.stop()
    for path in files:
        path.write_bytes(b"unreadable now")  # a restart that read files would lose them
    again = dimsefsm_server("qrscp", *args)
    found = find_images(again.port, tmp_path / "find2", PatientName="")
    assert sorted(str(ds.SOPInstanceUID) for ds in found) == wanted
    assert {str(ds.PatientName) for ds in found} == {"Imported^Once"}
    assert "not indexed" not in again.output()
    assert (store / ".dimsefsm" / "index.sqlite").is_file()


def test_database_url_and_a_newer_schema(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    store = tmp_path / "store"
    server = dimsefsm_server("qrscp", "-aet", QR_AET, "-od", str(store), "--database", url)
    assert find_images(server.port, tmp_path / "find") == []
    server.stop()
    assert (tmp_path / "shared.sqlite").is_file() and not (store / ".dimsefsm").exists()
    engine = open_engine(url)
    with engine.begin() as connection:
        connection.execute(update(schema_table).values(version=SCHEMA_VERSION + 1))
    engine.dispose()
    command = [sys.executable, "-m", "dimsefsm", "qrscp", "0", "-od", str(store)]
    done = subprocess.run(
        [*command, "--database", url], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert f"schema version {SCHEMA_VERSION + 1}, a newer one" in done.stderr


def test_an_index_beside_the_store_from_an_earlier_version_is_moved_under_it(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    old = tmp_path / "store.index.sqlite"  # where earlier versions kept the default index
    study = make_study(3, n_series=1)
    files = write_study(tmp_path / "in", study)
    args = ("-aet", QR_AET, "-od", str(store))
    earlier = dimsefsm_server("qrscp", *args, "--database", f"sqlite:///{old}")
    log = dcmtk_store(earlier.port, *files)
    assert log.count("Received Store Response (Success)") == 3, log
    earlier.stop()
    server = dimsefsm_server("qrscp", *args)
    new = store / ".dimsefsm" / "index.sqlite"
    assert f"index moved from {old} to {new}" in server.output()
    found = find_images(server.port, tmp_path / "find")
    assert sorted(str(ds.SOPInstanceUID) for ds in found) == sorted(
        str(ds.SOPInstanceUID) for ds in study
    )
    assert new.is_file() and not old.exists()
