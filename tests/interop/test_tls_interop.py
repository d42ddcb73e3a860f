"""DICOM over TLS against dcmtk 3.6.7, both ways, with dcmtk's default profile.

dcmtk's default security profile is "Non-downgrading BCP 195" (``+py``): TLS
1.2 or later with AEAD ciphers.  Python's ``ssl`` meets it as it is (the
connections below negotiate TLS 1.3), so no profile or cipher flag is needed.
Both sides verify each other: dcmtk's servers require a client certificate by
default (``-rc``) and so do ours.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.data.make import make_instance, make_study, write_instance, write_study
from tests.interop.peers import DcmtkServer, DimsefsmServer, run_tool, wait_until
from tests.tls_pki import Pki, make_pki

DIMSEFSM = [sys.executable, "-m", "dimsefsm"]
LOCALHOST = "127.0.0.1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def server_flags(pki: Pki) -> list[str]:
    return ["+tls", str(pki.server_key), str(pki.server_cert), "+cf", str(pki.ca)]


def client_flags(pki: Pki, *, key: Path | None = None, cert: Path | None = None) -> list[str]:
    own = [str(key or pki.client_key), str(cert or pki.client_cert)]
    return ["+tls", *own, "+cf", str(pki.ca)]


@pytest.mark.usefixtures("qrscp_backend")
@pytest.mark.parametrize("command", ["echoscp", "storescp", "qrscp"])
def test_dcmtk_echoscu_over_tls_against_dimsefsm_servers(
    dimsefsm_server: Callable[..., DimsefsmServer], pki: Pki, tmp_path: Path, command: str
) -> None:
    output = [] if command == "echoscp" else ["-od", str(tmp_path)]
    server = dimsefsm_server(command, "-aet", "DIMSEFSM", *output, *server_flags(pki))
    assert "(TLS)" in server.output()
    result = run_tool(
        ["echoscu", "-d", *client_flags(pki), "-aec", "DIMSEFSM", LOCALHOST, str(server.port)]
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out + server.output()
    assert "Transport connection: TLS over TCP/IP" in out
    assert "Received Echo Response (Success)" in out


def test_dcmtk_client_with_an_untrusted_certificate_is_refused_and_others_still_served(
    dimsefsm_server: Callable[..., DimsefsmServer], pki: Pki
) -> None:
    server = dimsefsm_server("echoscp", "-aet", "DIMSEFSM", *server_flags(pki))
    rogue = client_flags(pki, key=pki.rogue_key, cert=pki.rogue_cert)
    refused = run_tool(["echoscu", *rogue, "-aec", "DIMSEFSM", LOCALHOST, str(server.port)])
    assert refused.returncode != 0
    wait_until(
        lambda: "TLS handshake with 127.0.0.1:" in server.output(), "the server logs the refusal"
    )
    assert "certificate verify failed" in server.output()
    plain = run_tool(["echoscu", "-aec", "DIMSEFSM", LOCALHOST, str(server.port)])
    assert plain.returncode != 0
    good = run_tool(
        ["echoscu", *client_flags(pki), "-aec", "DIMSEFSM", LOCALHOST, str(server.port)]
    )
    assert good.returncode == 0, good.stdout + good.stderr + server.output()
    assert server.alive


def test_dimsefsm_echoscu_and_storescu_over_tls_against_dcmtk_storescp(
    dcmtk_server: Callable[..., DcmtkServer], pki: Pki, tmp_path: Path
) -> None:
    received = tmp_path / "received"
    received.mkdir()
    server = dcmtk_server(["storescp", *server_flags(pki), "-od", str(received)])
    port = str(server.port)
    echo = run_tool(
        [*DIMSEFSM, "echoscu", *client_flags(pki), LOCALHOST, port, "--repeat", "5", "-v"]
    )
    assert echo.returncode == 0, echo.stderr + server.output()
    assert "C-ECHO succeeded" in echo.stderr
    instance = make_instance(pixel_bytes=2 * 1024 * 1024)
    sent = write_instance(tmp_path / "sent.dcm", instance)
    store = run_tool([*DIMSEFSM, "storescu", *client_flags(pki), LOCALHOST, port, str(sent)])
    assert store.returncode == 0, store.stderr + server.output()
    [arrived] = list(received.iterdir())
    assert dcmread(arrived) == dcmread(sent)
    assert dcmread(arrived).PixelData == instance.PixelData


def test_dimsefsm_echoscu_refuses_a_server_it_does_not_trust(
    dcmtk_server: Callable[..., DcmtkServer], pki: Pki, tmp_path: Path
) -> None:
    server = dcmtk_server(["storescp", *server_flags(pki), "-od", str(tmp_path)])
    trusting_rogue = ["+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(pki.rogue_ca)]
    result = run_tool([*DIMSEFSM, "echoscu", *trusting_rogue, LOCALHOST, str(server.port)])
    assert result.returncode == 4
    assert "certificate verify failed" in result.stderr
    ignoring = run_tool([*DIMSEFSM, "echoscu", *trusting_rogue, "-ic", LOCALHOST, str(server.port)])
    assert ignoring.returncode == 0, ignoring.stderr + server.output()


def test_dcmtk_storescu_over_tls_to_dimsefsm_storescp(
    dimsefsm_server: Callable[..., DimsefsmServer], pki: Pki, tmp_path: Path
) -> None:
    received = tmp_path / "received"
    server = dimsefsm_server(
        "storescp", "-aet", "STORESCP", "-od", str(received), *server_flags(pki)
    )
    instance = make_instance(pixel_bytes=4 * 1024 * 1024)
    sent = write_instance(tmp_path / "sent.dcm", instance)
    result = run_tool(
        ["storescu", "-d", *client_flags(pki), "-aec", "STORESCP", LOCALHOST, str(server.port),
         str(sent)]
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out + server.output()
    assert "Transport connection: TLS over TCP/IP" in out
    arrived = received / f"{instance.SOPInstanceUID}.dcm"
    wait_until(arrived.exists, "the instance is stored")
    assert dcmread(arrived) == dcmread(sent)
    assert dcmread(arrived).PixelData == instance.PixelData


@pytest.mark.usefixtures("qrscp_backend")
def test_movescu_over_tls_moves_from_qrscp_to_a_tls_storescp(
    dcmtk_server: Callable[..., DcmtkServer],
    dimsefsm_server: Callable[..., DimsefsmServer],
    pki: Pki,
    tmp_path: Path,
) -> None:
    """TLS all the way: our movescu -> qrscp, and qrscp's sub-association -> dcmtk storescp.

    dcmtk 3.6.7's movescu has no TLS, so our movescu asks; the destination that must see
    TLS from qrscp (--dest-tls) is dcmtk's storescp, which requires our certificate.
    """
    received = tmp_path / "received"
    received.mkdir()
    destination = dcmtk_server(
        ["storescp", "-aet", "DEST", *server_flags(pki), "-od", str(received)]
    )
    study = make_study(3, n_series=1)
    write_study(tmp_path / "store", study)
    qrscp = dimsefsm_server(
        "qrscp",
        "-aet",
        "QR",
        "-od",
        str(tmp_path / "store"),
        "--dest",
        f"DEST={LOCALHOST}:{destination.port}",
        "--dest-tls",
        *server_flags(pki),
    )
    uid = study[0].StudyInstanceUID
    keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}"]
    movescu = [*DIMSEFSM, "movescu", LOCALHOST, str(qrscp.port), "-S", "-aec", "QR"]
    result = run_tool([*movescu, "-aem", "DEST", *client_flags(pki), *keys])
    assert result.returncode == 0, result.stdout + result.stderr + qrscp.output()
    wait_until(lambda: len(list(received.iterdir())) == 3, "three instances at storescp")
    got = sorted(str(dcmread(path).SOPInstanceUID) for path in received.iterdir())
    assert got == sorted(str(ds.SOPInstanceUID) for ds in study)


def test_dest_tls_needs_a_certificate_of_our_own(tmp_path: Path) -> None:
    result = run_tool([*DIMSEFSM, "qrscp", "0", "-od", str(tmp_path), "--dest-tls"])
    assert result.returncode == 2 and "--dest-tls needs +tls" in result.stderr
