"""Storage Commitment SCU: ask a peer to commit instances and wait for its report.

``dimsefsm stgcmtscu`` is built on this; so can any application::

    from dimsefsm import evt
    from dimsefsm.storage_commitment import (
        ReportCollector, commitment_ae, references_of, send_request, wait_on_association)

    collector = ReportCollector()
    ae = commitment_ae("MODALITY")
    assoc = ae.associate("pacs", 104, ae_title="PACS",
                         evt_handlers=[(evt.EVT_N_EVENT_REPORT, collector.on_report)])
    result = send_request(assoc, references_of(paths))
    result.outcome = wait_on_association(assoc, collector, result.transaction_uid, 60)
    assoc.release()
    print(result.all_committed, result.per_instance())

The report may come back two ways (PS3.4 J.3.3): on the association that
carried the request, while we keep it open (:func:`wait_on_association`
reads it until the report came), or on a new association the SCP requests,
for which we listen (:class:`ReportListener`, accepting Storage Commitment
with the SCP role for the requestor; then ``collector.wait``).  Either way
one :class:`ReportCollector` answers the N-EVENT-REPORT (Success for a report
it can read, 0x0110 with an ErrorComment otherwise) and keeps the outcome for
its Transaction UID.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import Dataset
from pydicom.uid import generate_uid

from dimsefsm import status as st
from dimsefsm.services.commitment import (
    STORAGE_COMMITMENT_INSTANCE,
    STORAGE_COMMITMENT_PUSH_MODEL,
    CommitmentOutcome,
    Reference,
    parse_report,
    request_dataset,
)
from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN

LOG = logging.getLogger("dimsefsm.commitment")

SYNTAXES = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)


def references_of(paths: Iterable[Path]) -> list[Reference]:
    """The SOP Class and Instance UIDs of Part-10 files (``Part10Error`` for another file)."""
    from dimsefsm.part10 import read_part10_info

    found = []
    for path in paths:
        info = read_part10_info(path)
        found.append(Reference(info.sop_class_uid, info.sop_instance_uid))
    return found


class ReportCollector:
    """Answers N-EVENT-REPORTs of Storage Commitment and keeps their outcomes.

    Bind :meth:`on_report` as the ``EVT_N_EVENT_REPORT`` handler, on the
    requesting association and on a listener for the new-association path.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._outcomes: dict[str, CommitmentOutcome] = {}

    def on_report(self, event: Any) -> tuple[int | Dataset, Dataset | None]:
        information = getattr(event, "event_information", None)
        try:
            outcome = parse_report(getattr(event, "event_type", None), information)
        except ValueError as exc:
            LOG.warning("storage commitment report not understood: %s", exc)
            answer = Dataset()
            answer.Status = st.PROCESSING_FAILURE
            answer.ErrorComment = str(exc)[:64]
            return answer, None
        LOG.info(
            "storage commitment report %s: %d committed, %d failed",
            outcome.transaction_uid,
            len(outcome.committed),
            len(outcome.failed),
        )
        with self._lock:
            self._outcomes[outcome.transaction_uid] = outcome
            self._lock.notify_all()
        return st.SUCCESS, None

    def get(self, transaction_uid: str) -> CommitmentOutcome | None:
        with self._lock:
            return self._outcomes.get(transaction_uid)

    def wait(self, transaction_uid: str, timeout: float | None) -> CommitmentOutcome | None:
        """The report of ``transaction_uid`` once it came (from another thread), or None."""
        with self._lock:
            self._lock.wait_for(lambda: transaction_uid in self._outcomes, timeout)
            return self._outcomes.get(transaction_uid)


@dataclass
class CommitmentResult:
    """What became of one request: the N-ACTION's answer and, if it came, the report."""

    transaction_uid: str
    references: tuple[Reference, ...]
    status: int | None  # the N-ACTION response's Status; None: no response
    comment: str = ""  # its ErrorComment, or why there was no answer
    outcome: CommitmentOutcome | None = None

    @property
    def all_committed(self) -> bool:
        outcome = self.outcome
        return (
            outcome is not None
            and not outcome.failed
            and {r.sop_instance_uid for r in outcome.committed}
            >= {r.sop_instance_uid for r in self.references}
        )

    def per_instance(self) -> list[tuple[Reference, int | None, bool]]:
        """Each requested reference: (reference, failure reason or None, reported?)."""
        outcome = self.outcome
        committed = {r.sop_instance_uid for r in outcome.committed} if outcome else set()
        failed = {r.sop_instance_uid: why for r, why in outcome.failed} if outcome else {}
        rows: list[tuple[Reference, int | None, bool]] = []
        for reference in self.references:
            uid = reference.sop_instance_uid
            if uid in failed:
                rows.append((reference, failed[uid], True))
            else:
                rows.append((reference, None, uid in committed))
        return rows


def commitment_ae(ae_title: str, listen: bool = False) -> Any:
    """An AE that requests Storage Commitment; ``listen``: and accepts its reports on
    associations the SCP requests (the SCP role granted to the requestor, PS3.4 J.3.3)."""
    from dimsefsm.ae import AE

    ae = AE(ae_title)
    ae.add_requested_context(STORAGE_COMMITMENT_PUSH_MODEL, SYNTAXES)
    if listen:
        ae.add_supported_context(STORAGE_COMMITMENT_PUSH_MODEL, SYNTAXES, scp_role=True)
    return ae


def send_request(
    assoc: Any, references: Iterable[Reference], transaction_uid: str | None = None
) -> CommitmentResult:
    """Send the N-ACTION on ``assoc``; the result holds its answer (no report yet)."""
    refs = tuple(references)
    uid = transaction_uid or generate_uid()
    status, _ = assoc.send_n_action(
        request_dataset(uid, refs),
        1,
        STORAGE_COMMITMENT_PUSH_MODEL,
        STORAGE_COMMITMENT_INSTANCE,
    )
    if "Status" not in status:
        why = assoc.describe_failure() or "no answer"
        return CommitmentResult(uid, refs, None, f"no N-ACTION response: {why}")
    return CommitmentResult(uid, refs, int(status.Status), str(status.get("ErrorComment", "")))


def wait_on_association(
    assoc: Any, collector: ReportCollector, transaction_uid: str, timeout: float | None
) -> CommitmentOutcome | None:
    """Read ``assoc`` until the report of ``transaction_uid`` came on it (the collector must
    be its ``EVT_N_EVENT_REPORT`` handler), the peer ended it, or ``timeout`` passed."""
    if not assoc.is_established:
        return collector.get(transaction_uid)
    assoc.wait_for(lambda: collector.get(transaction_uid) is not None, timeout)
    return collector.get(transaction_uid)


class ReportListener:
    """Listens for the reports an SCP sends on associations it requests.

    Accepts Storage Commitment with the SCP role for the requestor (PS3.4
    J.3.3), and nothing else; stop with :meth:`close` (or use it as a context
    manager).
    """

    def __init__(
        self,
        ae_title: str,
        address: tuple[str, int],
        collector: ReportCollector,
        ssl_context: Any = None,
        ae: Any = None,
    ) -> None:
        from dimsefsm import evt

        self.ae = ae if ae is not None else commitment_ae(ae_title, listen=True)
        self.server = self.ae.start_server(
            address,
            block=False,
            evt_handlers=[(evt.EVT_N_EVENT_REPORT, collector.on_report)],
            ssl_context=ssl_context,
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.address
        return host, port

    def close(self) -> None:
        self.server.shutdown()

    def __enter__(self) -> ReportListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
