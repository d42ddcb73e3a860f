"""pynetdicom's documented examples, ported to dimsefsm by changing their imports.

Each function is the example's code from the pynetdicom documentation page
named in its docstring (pynetdicom 2.x, docs/examples/*.rst), with
``from pynetdicom ...`` replaced by ``from dimsefsm.compat ...``.  So that a
test can run them, three things the examples hard-code come in as arguments:
the peer's port (the examples use 11112), the directory of instances
(``'/path/to/directory'``), and for servers ``block=False`` with the server
returned (the examples block for ever).  Nothing else is changed: a line
that needed more than that would be a gap in dimsefsm.compat.
"""

# ruff: noqa: I001, UP030, UP032, B007, SIM102
# mypy: disable-error-code="no-untyped-def"

from __future__ import annotations

import os
from typing import Any

# -- pynetdicom: docs/examples/verification.rst ("Verification SCU") ---------------------------


def echo_scu(port: int) -> None:
    """Verification SCU, pynetdicom docs: Verification Service Examples."""
    from dimsefsm.compat import AE
    from dimsefsm.compat import Verification

    ae = AE()
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port)
    if assoc.is_established:
        status = assoc.send_c_echo()
        if status:
            print("C-ECHO request status: 0x{0:04x}".format(status.Status))
        else:
            print("Connection timed out, was aborted or received invalid response")
        assoc.release()
    else:
        print("Association rejected, aborted or never connected")


def echo_scp(port: int) -> Any:
    """Verification SCP; the handler is pynetdicom's documented EVT_C_ECHO example
    (pynetdicom docs: reference, Event Handlers, ``doc_handle_echo``)."""
    from dimsefsm.compat import AE, evt
    from dimsefsm.compat import Verification

    def handle_echo(event):
        """Handle a C-ECHO service request."""
        requestor = event.assoc.requestor
        timestamp = event.timestamp.strftime("%Y-%m-%d %H:%M:%S")
        msg = "Received C-ECHO service request from ({}, {}) at {}".format(
            requestor.address, requestor.port, timestamp
        )
        print(msg)
        return 0x0000

    handlers = [(evt.EVT_C_ECHO, handle_echo)]
    ae = AE()
    ae.add_supported_context(Verification)
    return ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)


# -- pynetdicom: docs/examples/storage.rst ------------------------------------------------------


def store_scu(port: int, path: str) -> None:
    """Storage SCU, pynetdicom docs: Storage Service Examples."""
    from pydicom import dcmread

    from dimsefsm.compat import AE
    from dimsefsm.compat import CTImageStorage

    ae = AE()
    ae.add_requested_context(CTImageStorage)
    ds = dcmread(path)
    assoc = ae.associate("127.0.0.1", port)
    if assoc.is_established:
        status = assoc.send_c_store(ds)
        if status:
            print("C-STORE request status: 0x{0:04x}".format(status.Status))
        else:
            print("Connection timed out, was aborted or received invalid response")
        assoc.release()
    else:
        print("Association rejected, aborted or never connected")


def store_scp(port: int) -> Any:
    """Storage SCP, pynetdicom docs: Storage Service Examples (saves in the working directory)."""
    from dimsefsm.compat import AE, evt, AllStoragePresentationContexts

    def handle_store(event):
        """Handle a C-STORE request event."""
        ds = event.dataset
        ds.file_meta = event.file_meta
        ds.save_as(ds.SOPInstanceUID, enforce_file_format=True)
        return 0x0000

    handlers = [(evt.EVT_C_STORE, handle_store)]
    ae = AE()
    ae.supported_contexts = AllStoragePresentationContexts
    return ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)


# -- pynetdicom: docs/examples/qr_find.rst --------------------------------------------------------


def find_scu(port: int) -> None:
    """Query/Retrieve (Find) SCU, pynetdicom docs: Query/Retrieve (Find) Service Examples."""
    from pydicom.dataset import Dataset

    from dimsefsm.compat import AE
    from dimsefsm.compat import PatientRootQueryRetrieveInformationModelFind

    ae = AE()
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelFind)
    ds = Dataset()
    ds.PatientName = "CITIZEN^Jan"
    ds.QueryRetrieveLevel = "PATIENT"
    assoc = ae.associate("127.0.0.1", port)
    if assoc.is_established:
        responses = assoc.send_c_find(ds, PatientRootQueryRetrieveInformationModelFind)
        for status, identifier in responses:
            if status:
                print("C-FIND query status: 0x{0:04X}".format(status.Status))
            else:
                print("Connection timed out, was aborted or received invalid response")
        assoc.release()
    else:
        print("Association rejected, aborted or never connected")


def find_scp(port: int, fdir: str) -> Any:
    """Query/Retrieve (Find) SCP, pynetdicom docs: Query/Retrieve (Find) Service Examples."""
    from pydicom import dcmread
    from pydicom.dataset import Dataset

    from dimsefsm.compat import AE, evt
    from dimsefsm.compat import PatientRootQueryRetrieveInformationModelFind

    def handle_find(event):
        """Handle a C-FIND request event."""
        ds = event.identifier
        instances = []
        for fpath in os.listdir(fdir):
            instances.append(dcmread(os.path.join(fdir, fpath)))
        if "QueryRetrieveLevel" not in ds:
            yield 0xC000, None
            return
        matching = []
        if ds.QueryRetrieveLevel == "PATIENT":
            if "PatientName" in ds:
                if ds.PatientName not in ["*", "", "?"]:
                    matching = [inst for inst in instances if inst.PatientName == ds.PatientName]
        for instance in matching:
            if event.is_cancelled:
                yield (0xFE00, None)
                return
            identifier = Dataset()
            identifier.PatientName = instance.PatientName
            identifier.QueryRetrieveLevel = ds.QueryRetrieveLevel
            yield (0xFF00, identifier)

    handlers = [(evt.EVT_C_FIND, handle_find)]
    ae = AE()
    ae.add_supported_context(PatientRootQueryRetrieveInformationModelFind)
    return ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)


# -- pynetdicom: docs/examples/qr_get.rst ---------------------------------------------------------


def get_scu(port: int, patient_id: str) -> None:
    """Query/Retrieve (Get) SCU, pynetdicom docs: Query/Retrieve (Get) Service Examples."""
    from pydicom.dataset import Dataset

    from dimsefsm.compat import AE, evt, build_role
    from dimsefsm.compat import (
        PatientRootQueryRetrieveInformationModelGet,
        CTImageStorage,
    )

    def handle_store(event):
        """Handle a C-STORE request event."""
        ds = event.dataset
        ds.file_meta = event.file_meta
        ds.save_as(ds.SOPInstanceUID, enforce_file_format=True)
        return 0x0000

    handlers = [(evt.EVT_C_STORE, handle_store)]
    ae = AE()
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    role = build_role(CTImageStorage, scp_role=True)
    ds = Dataset()
    ds.QueryRetrieveLevel = "PATIENT"
    ds.PatientID = patient_id
    assoc = ae.associate("127.0.0.1", port, ext_neg=[role], evt_handlers=handlers)
    if assoc.is_established:
        responses = assoc.send_c_get(ds, PatientRootQueryRetrieveInformationModelGet)
        for status, identifier in responses:
            if status:
                print("C-GET query status: 0x{0:04x}".format(status.Status))
            else:
                print("Connection timed out, was aborted or received invalid response")
        assoc.release()
    else:
        print("Association rejected, aborted or never connected")


def get_scp(port: int, fdir: str) -> Any:
    """Query/Retrieve (Get) SCP, pynetdicom docs: Query/Retrieve (Get) Service Examples."""
    from pydicom import dcmread

    from dimsefsm.compat import AE, StoragePresentationContexts, evt
    from dimsefsm.compat import PatientRootQueryRetrieveInformationModelGet

    def handle_get(event):
        """Handle a C-GET request event."""
        ds = event.identifier
        if "QueryRetrieveLevel" not in ds:
            yield 0xC000, None
            return
        instances = []
        matching = []
        for fpath in os.listdir(fdir):
            instances.append(dcmread(os.path.join(fdir, fpath)))
        if ds.QueryRetrieveLevel == "PATIENT":
            if "PatientID" in ds:
                matching = [inst for inst in instances if inst.PatientID == ds.PatientID]
        yield len(matching)
        for instance in matching:
            if event.is_cancelled:
                yield (0xFE00, None)
                return
            yield (0xFF00, instance)

    handlers = [(evt.EVT_C_GET, handle_get)]
    ae = AE()
    ae.add_supported_context(PatientRootQueryRetrieveInformationModelGet)
    for cx in StoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, scp_role=True, scu_role=False)
    return ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)


# -- pynetdicom: docs/examples/qr_move.rst --------------------------------------------------------


def move_scu(port: int, patient_id: str, destination: str) -> None:
    """Query/Retrieve (Move) SCU, pynetdicom docs: Query/Retrieve (Move) Service Examples."""
    from pydicom.dataset import Dataset

    from dimsefsm.compat import AE
    from dimsefsm.compat import PatientRootQueryRetrieveInformationModelMove

    ae = AE()
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelMove)
    ds = Dataset()
    ds.QueryRetrieveLevel = "PATIENT"
    ds.PatientID = patient_id
    assoc = ae.associate("127.0.0.1", port)
    if assoc.is_established:
        responses = assoc.send_c_move(ds, destination, PatientRootQueryRetrieveInformationModelMove)
        for status, identifier in responses:
            if status:
                print("C-MOVE query status: 0x{0:04x}".format(status.Status))
            else:
                print("Connection timed out, was aborted or received invalid response")
        assoc.release()
    else:
        print("Association rejected, aborted or never connected")


def move_scp(port: int, fdir: str, known_aet_dict: dict[str, tuple[str, int]]) -> Any:
    """Query/Retrieve (Move) SCP, pynetdicom docs: Query/Retrieve (Move) Service Examples."""
    from pydicom import dcmread

    from dimsefsm.compat import AE, StoragePresentationContexts, evt
    from dimsefsm.compat import PatientRootQueryRetrieveInformationModelMove

    def handle_move(event):
        """Handle a C-MOVE request event."""
        ds = event.identifier
        if "QueryRetrieveLevel" not in ds:
            yield 0xC000, None
            return
        try:
            (addr, port) = known_aet_dict[event.move_destination]
        except KeyError:
            yield (None, None)
            return
        yield (addr, port)
        instances = []
        matching = []
        for fpath in os.listdir(fdir):
            instances.append(dcmread(os.path.join(fdir, fpath)))
        if ds.QueryRetrieveLevel == "PATIENT":
            if "PatientID" in ds:
                matching = [inst for inst in instances if inst.PatientID == ds.PatientID]
        yield len(matching)
        for instance in matching:
            if event.is_cancelled:
                yield (0xFE00, None)
                return
            yield (0xFF00, instance)

    handlers = [(evt.EVT_C_MOVE, handle_move)]
    ae = AE()
    ae.requested_contexts = StoragePresentationContexts
    ae.add_supported_context(PatientRootQueryRetrieveInformationModelMove)
    return ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)
