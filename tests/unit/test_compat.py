"""dimsefsm.compat: pynetdicom's names (issue 15 items 7 and 8)."""

from __future__ import annotations

import pydoc
from pathlib import Path

import pytest
from pydicom._uid_dict import UID_dictionary

import dimsefsm
from dimsefsm import AE, compat, sop_class
from dimsefsm.qr import registry as qr
from dimsefsm.services.storage import StorageConfig
from tests.data.make import make_instance, write_instance
from tests.interop.peers import free_port


def test_sop_class_constants_come_from_the_registries() -> None:
    assert compat.Verification == "1.2.840.10008.1.1"
    assert compat.CTImageStorage == "1.2.840.10008.5.1.4.1.1.2"
    assert compat.PatientRootQueryRetrieveInformationModelFind == "1.2.840.10008.5.1.4.1.2.1.1"
    assert compat.ModalityWorklistInformationFind == "1.2.840.10008.5.1.4.31"
    # every storage and Q/R class the registries know is exported under its PS3.6 keyword
    for uid in (*sop_class.STORAGE_SOP_CLASSES, *(s.uid for s in qr.QR_SOP_CLASSES)):
        keyword = UID_dictionary[uid][4] if uid in UID_dictionary else None
        if keyword:
            assert getattr(compat, keyword) == uid
            assert keyword in compat.__all__


def test_context_lists_match_pynetdicoms() -> None:
    all_storage = [cx.abstract_syntax for cx in compat.AllStoragePresentationContexts]
    assert sorted(all_storage) == sorted(sop_class.STORAGE_SOP_CLASSES)
    storage = [cx.abstract_syntax for cx in compat.StoragePresentationContexts]
    assert len(storage) == 120 and compat.CTImageStorage in storage
    qr_uids = {cx.abstract_syntax for cx in compat.QueryRetrievePresentationContexts}
    assert compat.StudyRootQueryRetrieveInformationModelMove in qr_uids
    assert compat.ModalityWorklistInformationFind not in qr_uids
    worklist = compat.BasicWorklistManagementPresentationContexts
    assert [cx.abstract_syntax for cx in worklist] == [compat.ModalityWorklistInformationFind]
    assert [cx.abstract_syntax for cx in compat.VerificationPresentationContexts] == [
        compat.Verification
    ]


def test_supported_and_requested_contexts_take_pynetdicom_lists() -> None:
    ae = AE()
    ae.supported_contexts = compat.StoragePresentationContexts
    assert len(ae.supported_contexts) == 120
    ae.requested_contexts = compat.VerificationPresentationContexts
    assert ae.requested_contexts == [
        (compat.Verification, ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2"))
    ]
    ae.supported_contexts = [compat.build_context(compat.CTImageStorage, "1.2.840.10008.1.2")]
    assert ae.supported_contexts == {compat.CTImageStorage: ("1.2.840.10008.1.2",)}


def test_build_role_in_ext_neg_proposes_the_scp_role() -> None:
    role = compat.build_role(compat.CTImageStorage, scp_role=True)
    assert (role.sop_class_uid, role.scu_role, role.scp_role) == (
        compat.CTImageStorage,
        False,
        True,
    )
    ae = AE()
    ae.add_requested_context(compat.Verification)
    assoc = ae.associate("127.0.0.1", free_port(), ext_neg=[role])  # nobody listens
    assert not assoc.is_established
    assert ae.scu_role_proposals == {compat.CTImageStorage: (False, True)}


def test_scu_association_names_its_requestor_and_acceptor() -> None:
    scp = AE("ECHO-SCP")
    scp.add_supported_context(compat.Verification)
    port = free_port()
    server = scp.start_server(("127.0.0.1", port), block=False)
    try:
        ae = AE("MY-SCU")
        ae.add_requested_context(compat.Verification)
        assoc = ae.associate("127.0.0.1", port, ae_title="ECHO-SCP")
        assert assoc.is_established
        requestor, acceptor = assoc.requestor, assoc.acceptor
        assoc.release()
    finally:
        server.shutdown()
    assert (requestor.ae_title, requestor.address) == ("MY-SCU", "127.0.0.1")
    assert requestor.port > 0 and requestor.port != port
    assert (acceptor.ae_title, acceptor.address, acceptor.port) == ("ECHO-SCP", "127.0.0.1", port)


def test_package_is_typed() -> None:
    assert (Path(dimsefsm.__file__).parent / "py.typed").is_file()


def test_help_shows_the_ae_attributes_and_timeouts() -> None:
    text = pydoc.plain(pydoc.render_doc(AE))
    for name in (
        "acse_timeout",
        "dimse_timeout",
        "network_timeout",
        "connection_timeout",
        "artim_timeout",
        "pdu_timeout",
        "supported_contexts",
        "requested_contexts",
    ):
        assert name in text
    assert "Request an association" in text  # method docstrings too


def test_storage_config_creates_its_directory(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    StorageConfig(mode="file", directory=target)
    assert target.is_dir()


def test_storage_directory_that_cannot_be_made_answers_out_of_resources(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"not a directory")
    scp = AE()
    scp.storage = StorageConfig(mode="file", directory=blocker / "store")  # cannot exist
    assert "cannot create storage directory" in caplog.text
    scp.add_supported_context(compat.CTImageStorage)
    port = free_port()
    server = scp.start_server(("127.0.0.1", port), block=False)
    try:
        ae = AE()
        ae.add_requested_context(compat.CTImageStorage)
        assoc = ae.associate("127.0.0.1", port)
        assert assoc.is_established
        path = write_instance(tmp_path / "x.dcm", make_instance())
        status = assoc.send_c_store(path)
        second = assoc.send_c_store(path)  # the association goes on
        assoc.release()
    finally:
        server.shutdown()
    assert status.Status == 0xA700 and second.Status == 0xA700
    assert assoc.is_released
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "x.dcm"]  # nothing half-written
