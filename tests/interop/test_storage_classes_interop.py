"""dcmtk's storescu stores every family of Storage SOP class into our SCPs.

The "For Presentation / For Processing" image classes (DX, MG, IO, breast
projection, IVOCT, DICOS DX) were once left out of the registry, so both
``storescp`` and ``qrscp`` refused the presentation context: dcmtk then says
"No presentation context for: (DX)" and stores nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.data.make import make_instance, write_instance
from tests.interop.peers import LOCALHOST, DimsefsmServer, run_tool

SCP_AET = "DIMSEFSM"
# The classes of that kind dcmtk 3.6.7's storescu proposes by default (it does not
# propose Breast Projection X-Ray or IVOCT: the unit tests cover those).
CLASSES = {
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray - For Presentation
    "MG": "1.2.840.10008.5.1.4.1.1.1.2.1",  # Digital Mammography X-Ray - For Processing
    "IO": "1.2.840.10008.5.1.4.1.1.1.3",  # Digital Intra-Oral X-Ray - For Presentation
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("classes")
    return {
        modality: write_instance(
            folder / f"{modality}.dcm", make_instance(uid, Modality=modality, PatientID="PCLS")
        )
        for modality, uid in CLASSES.items()
    }


def _storescu(port: int, paths: list[Path]) -> str:
    result = run_tool(
        ["/usr/bin/storescu", "-v", "-aec", SCP_AET, LOCALHOST, str(port), *map(str, paths)]
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "No presentation context" not in log, log
    return log


def test_storescu_stores_dx_mg_io_into_storescp(
    dimsefsm_server: Callable[..., DimsefsmServer], files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    server = dimsefsm_server("storescp", "-aet", SCP_AET, "-od", str(out))
    log = _storescu(server.port, list(files.values()))
    assert log.count("Received Store Response (Success)") == len(files), log
    received = {str(dcmread(path).SOPClassUID) for path in out.rglob("*") if path.is_file()}
    assert received == set(CLASSES.values())


@pytest.mark.usefixtures("qrscp_backend")
def test_storescu_stores_a_dx_into_qrscp_and_findscu_finds_it(
    dimsefsm_server: Callable[..., DimsefsmServer], files: dict[str, Path], tmp_path: Path
) -> None:
    server = dimsefsm_server("qrscp", "-aet", SCP_AET, "-od", str(tmp_path / "store"))
    log = _storescu(server.port, [files["DX"]])
    assert "Received Store Response (Success)" in log, log
    found = run_tool(
        [
            "/usr/bin/findscu",
            "-S",
            "-aec",
            SCP_AET,
            "-X",
            "-od",
            str(tmp_path),
            "-k",
            "QueryRetrieveLevel=IMAGE",
            "-k",
            f"StudyInstanceUID={dcmread(files['DX']).StudyInstanceUID}",
            "-k",
            "SOPClassUID",
            LOCALHOST,
            str(server.port),
        ]
    )
    assert found.returncode == 0, found.stderr
    (answer,) = [dcmread(path) for path in tmp_path.glob("rsp*.dcm")]
    assert answer.SOPClassUID == CLASSES["DX"]
