"""The transport opens a C-MOVE SCP's sub-associations with the AE it is given.

The transport sits below the facades (``lint-imports`` holds it there), so the
AE that requests a sub-association is injected by whoever builds the driver.
"""

from __future__ import annotations

from typing import Any, cast

from dimsefsm.services.move import MoveScp, OpenSubAssociation
from dimsefsm.transport.sub_association import SubAssociations


class RecordingOp:
    """Stands in for the C-MOVE operation: records what the transport reports to it."""

    def __init__(self) -> None:
        self.done = False
        self.aborted: list[str] = []
        self.rejected: list[str] = []

    def sub_assoc_aborted(self, reason: str) -> None:
        self.aborted.append(reason)

    def sub_assoc_rejected(self, reason: str) -> None:
        self.rejected.append(reason)


class RejectedAssociation:
    is_established = False
    is_rejected = True

    def describe_failure(self) -> str:
        return "association rejected (result 1, source 1, reason 7)"


class RecordingAE:
    """The injected AE: records its title, the contexts and where it is asked to dial."""

    made: list[RecordingAE] = []

    def __init__(self, ae_title: str) -> None:
        self.ae_title = ae_title
        self.contexts: list[tuple[str, tuple[str, ...]]] = []
        self.calls: list[tuple[Any, ...]] = []
        RecordingAE.made.append(self)

    def add_requested_context(self, sop_class: str, syntaxes: tuple[str, ...]) -> None:
        self.contexts.append((sop_class, syntaxes))

    def associate(self, host: str, port: int, **options: Any) -> RejectedAssociation:
        self.calls.append((host, port, options["ae_title"]))
        return RejectedAssociation()


def open_effect(op: RecordingOp) -> OpenSubAssociation:
    contexts = (("1.2.840.10008.5.1.4.1.1.2", ("1.2.840.10008.1.2.1",)),)
    return OpenSubAssociation(
        cast(MoveScp, op), ("127.0.0.1", 11113), "MOVESCP", "STORESCP", contexts
    )


def test_the_injected_ae_requests_the_sub_association() -> None:
    op = RecordingOp()
    RecordingAE.made.clear()
    SubAssociations(RecordingAE).perform(open_effect(op), lambda: None)
    (ae,) = RecordingAE.made
    assert ae.ae_title == "MOVESCP"
    assert ae.contexts == [("1.2.840.10008.5.1.4.1.1.2", ("1.2.840.10008.1.2.1",))]
    assert ae.calls == [("127.0.0.1", 11113, "STORESCP")]
    assert op.rejected == ["association rejected (result 1, source 1, reason 7)"]


def test_without_an_ae_the_sub_association_fails_cleanly() -> None:
    op = RecordingOp()
    SubAssociations(None).perform(open_effect(op), lambda: None)
    assert op.aborted == ["no AE to request a sub-association on this connection"]
    assert op.rejected == []
