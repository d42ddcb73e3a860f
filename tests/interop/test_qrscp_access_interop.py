"""Who may do what at ``dimsefsm qrscp --config qrscp.toml``, as dcmtk's programs see it.

One archive, started once for the module, lists four peers; each dcmtk program
calls with ``-aet`` as one of them (or as nobody) and gets the standard's
answer: A-ASSOCIATE-RJ "calling AE title not recognized" for an unknown
caller or a known one at the wrong address, user-rejected presentation
contexts for a service the peer may not use, 0xA801 for a C-MOVE to a peer
that may not receive.  Without a file the server listens on 127.0.0.1 and
says that any calling AE is accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.data.make import make_study, write_study
from tests.interop.peers import DimsefsmServer, free_port, run_tool, wait_until

ARCHIVE = "ARCHIVE"
LOCALHOST = "127.0.0.1"
CONFIG = """\
ae_title = "ARCHIVE"
storage = "store"

[peers.modality]           # sends images, nothing else
ae_title = "MODALITY"
may = ["store"]

[peers.viewer]             # queries and retrieves, and receives what it moves
ae_title = "VIEWER"
host = "127.0.0.1"
port = {viewer_port}
may = ["find", "get", "move", "receive"]
check_host = true

[peers.pacs]               # may store and query, but is no C-MOVE destination
ae_title = "PACS"
host = "127.0.0.1"
port = {pacs_port}
may = ["find", "store"]

[peers.remote]             # known, but only from an address we never call from
ae_title = "REMOTE"
host = "192.0.2.1"
check_host = true
may = ["find"]
"""


class Archive:
    def __init__(self, server: DimsefsmServer, study_uid: str, viewer_port: int) -> None:
        self.server = server
        self.study_uid = study_uid
        self.viewer_port = viewer_port

    def run(
        self, program: str, calling: str, *options: str, files: Iterable[Path] = ()
    ) -> tuple[int, str]:
        """A dcmtk program (absolute path) calling as ``calling``; exit code and output."""
        args = [f"/usr/bin/{program}", "-v", "-aet", calling, "-aec", ARCHIVE, *options]
        result = run_tool([*args, LOCALHOST, str(self.server.port), *map(str, files)])
        return result.returncode, result.stdout + result.stderr

    def study_keys(self) -> list[str]:
        return ["-S", "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={self.study_uid}"]


@pytest.fixture(scope="module")
def archive(
    tmp_path_factory: pytest.TempPathFactory, module_qrscp_backend: str
) -> Iterator[Archive]:
    """The archive, loaded by MODALITY with a two-instance study."""
    home = tmp_path_factory.mktemp("archive")
    viewer_port = free_port()
    config = home / "qrscp.toml"
    config.write_text(CONFIG.format(viewer_port=viewer_port, pacs_port=free_port()))
    study = make_study(2, n_series=1)
    files = write_study(home / "in", study)
    with DimsefsmServer(["qrscp", str(free_port()), "--config", str(config)]) as server:
        assert isinstance(server, DimsefsmServer)
        archive = Archive(server, str(study[0].StudyInstanceUID), viewer_port)
        code, log = archive.run("storescu", "MODALITY", files=files)
        assert code == 0, log
        yield archive


def test_the_log_says_how_many_peers_and_which_may_retrieve(archive: Archive) -> None:
    assert (
        "4 peer(s) listed, others refused (2 checked by host); may retrieve: VIEWER"
        in archive.server.output()
    )


def test_an_unknown_caller_is_rejected(archive: Archive) -> None:
    code, log = archive.run("echoscu", "NOBODY")
    assert code != 0
    assert "Result: Rejected Permanent, Source: Service User" in log
    assert "Reason: Calling AE Title Not Recognized" in log
    logged = "association from 'NOBODY' at 127.0.0.1 refused: AE title not listed"
    # The server logs before it answers, but its output is read by a thread of ours.
    wait_until(lambda: logged in archive.server.output(), "the server logs the refusal")


def test_a_known_caller_at_another_address_is_rejected(archive: Archive) -> None:
    code, log = archive.run("echoscu", "REMOTE")
    assert code != 0
    assert "Reason: Calling AE Title Not Recognized" in log


def test_a_known_caller_is_served_echo_find_and_get(archive: Archive, tmp_path: Path) -> None:
    code, log = archive.run("echoscu", "VIEWER")
    assert code == 0, log
    out = tmp_path / "found"
    out.mkdir()
    code, log = archive.run("findscu", "VIEWER", "-X", "-od", str(out), *archive.study_keys())
    assert code == 0, log
    assert [str(dcmread(p).StudyInstanceUID) for p in out.glob("rsp*.dcm")] == [archive.study_uid]
    got = tmp_path / "got"
    got.mkdir()
    code, log = archive.run("getscu", "VIEWER", "-od", str(got), *archive.study_keys())
    assert code == 0, log
    assert len(list(got.iterdir())) == 2


def test_a_peer_without_get_is_refused_cget(archive: Archive, tmp_path: Path) -> None:
    """PACS may find and store: its C-GET context is user-rejected, nothing is sent."""
    code, log = archive.run("getscu", "PACS", "-od", str(tmp_path), *archive.study_keys())
    assert code != 0
    assert "No adequate Presentation Contexts for sending C-GET" in log
    assert list(tmp_path.iterdir()) == []


def test_a_peer_without_store_is_refused_cstore(archive: Archive, tmp_path: Path) -> None:
    """VIEWER may retrieve, not store: accepted with every storage context refused.

    As dcmtk's and pynetdicom's servers answer; dcmtk's storescu then says so.
    """
    files = write_study(tmp_path, make_study(1, n_series=1))
    code, log = archive.run("storescu", "VIEWER", files=files)
    assert code != 0
    assert "No Acceptable Presentation Contexts" in log


def test_cmove_to_a_peer_without_receive_is_a801(archive: Archive) -> None:
    code, log = archive.run("movescu", "VIEWER", "-aem", "PACS", *archive.study_keys())
    assert "Received Final Move Response (Refused: MoveDestinationUnknown)" in log, log
    assert code != 0
    logged = "a peer that may not receive, refused as an unknown destination 'PACS'"
    # The server logs before it answers, but its output is read by a thread of ours.
    wait_until(lambda: logged in archive.server.output(), "the server logs the refusal")


def test_cmove_to_a_peer_that_may_receive_is_served(archive: Archive, tmp_path: Path) -> None:
    port = str(archive.viewer_port)
    options = ["-aem", "VIEWER", "+P", port, "-od", str(tmp_path), *archive.study_keys()]
    code, log = archive.run("movescu", "VIEWER", *options)
    assert code == 0, log
    assert "Received Final Move Response (Success)" in log
    assert len(list(tmp_path.iterdir())) == 2


@pytest.mark.usefixtures("qrscp_backend")
def test_without_a_file_qrscp_listens_on_localhost_and_accepts_any_caller(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path
) -> None:
    server = dimsefsm_server("qrscp", "-od", str(tmp_path / "store"))
    output = server.output()
    assert f"DIMSEFSM listening on 127.0.0.1:{server.port}" in output
    assert "no peers listed: any calling AE title is accepted" in output
    code = run_tool(
        ["/usr/bin/echoscu", "-aet", "ANYONE", "-aec", "DIMSEFSM", LOCALHOST, str(server.port)]
    ).returncode
    assert code == 0


@pytest.mark.usefixtures("qrscp_backend")
def test_open_to_the_network_without_peers_is_warned_about(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path
) -> None:
    server = dimsefsm_server("qrscp", "-od", str(tmp_path / "store"), "--bind", "0.0.0.0")
    output = server.output()
    assert f"DIMSEFSM listening on 0.0.0.0:{server.port}" in output
    warning = f"listening on 0.0.0.0 without [peers]: anyone who reaches port {server.port}"
    assert f"W: dimsefsm.access: {warning}" in output
