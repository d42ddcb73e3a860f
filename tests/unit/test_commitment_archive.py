"""qrscp's Storage Commitment: the check against the archive, the journal, the desk's runner.

The check is honest (index *and* file), the journal is atomic and survives a
restart, and the desk carries an exchange to its end through the effects
(here with a stand-in AE: the wire is tested in the interop tests).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset
from sqlalchemy import text

from dimsefsm import status as st
from dimsefsm.archive.commitment import (
    CommitmentDesk,
    CommitmentJournal,
    DeskSettings,
    JournalEntry,
    check_references,
)
from dimsefsm.archive.index import ArchiveIndex
from dimsefsm.assoc.negotiation import AcceptedContext
from dimsefsm.services import commitment as sc
from dimsefsm.services.commitment import CommitmentRequest, Reference
from tests.data.make import make_instance, write_instance

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"


@pytest.fixture
def index(tmp_path: Path) -> Iterator[ArchiveIndex]:
    archive = ArchiveIndex(tmp_path / "store")
    (tmp_path / "store").mkdir()
    archive.open()
    yield archive
    archive.close()


def stored(index: ArchiveIndex, name: str, sop_class: str = CT) -> Reference:
    ds = make_instance(sop_class)
    path = write_instance(index.directory / f"{name}.dcm", ds)
    assert index.add_file(path) is not None
    return Reference(sop_class, str(ds.SOPInstanceUID))


def test_only_indexed_instances_with_their_file_and_class_are_committed(
    index: ArchiveIndex, caplog: pytest.LogCaptureFixture
) -> None:
    kept = stored(index, "kept")
    lost = stored(index, "lost")
    (index.directory / "lost.dcm").unlink()
    other = stored(index, "other")
    wrong_class = Reference(MR, other.sop_instance_uid)
    absent = Reference(CT, "1.2.3.4.5")
    unknown_class = Reference("1.2.3.4", "1.2.3.4.6")
    checked = dict(check_references(index, [kept, lost, wrong_class, absent, unknown_class]))
    assert checked == {
        kept: None,
        lost: sc.NO_SUCH_OBJECT_INSTANCE,
        wrong_class: sc.CLASS_INSTANCE_CONFLICT,
        absent: sc.NO_SUCH_OBJECT_INSTANCE,
        unknown_class: sc.SOP_CLASS_NOT_SUPPORTED,
    }
    assert "file" in caplog.text and "missing" in caplog.text


def test_a_thousand_references_are_checked_in_chunks(index: ArchiveIndex) -> None:
    kept = stored(index, "kept")
    refs = [kept] + [Reference(CT, f"1.2.3.{n}") for n in range(1, 1200)]
    checked = check_references(index, refs)
    assert checked[0] == (kept, None)
    assert {why for _, why in checked[1:]} == {sc.NO_SUCH_OBJECT_INSTANCE}


def test_an_unreadable_index_fails_every_reference_with_processing_failure(
    index: ArchiveIndex, caplog: pytest.LogCaptureFixture
) -> None:
    with index.engine.begin() as connection:
        connection.execute(text("DROP TABLE instance"))
    checked = check_references(index, [Reference(CT, "1.2.3")])
    assert "index cannot be read" in caplog.text
    assert checked == [(Reference(CT, "1.2.3"), sc.PROCESSING_FAILURE)]


# -- the journal ---------------------------------------------------------------------------
REQUEST = CommitmentRequest("1.2.3.99", (Reference(CT, "1.2.3.1"),))


def test_journal_keeps_and_forgets(tmp_path: Path) -> None:
    journal = CommitmentJournal.for_storage(tmp_path)
    journal.write(JournalEntry(REQUEST, "MODALITY"))
    assert journal.holds("1.2.3.99")
    assert journal.entries() == [JournalEntry(REQUEST, "MODALITY")]
    assert [p.name for p in journal.directory.iterdir()] == ["1.2.3.99.json"]
    journal.remove("1.2.3.99")
    assert journal.entries() == []


def test_journal_write_failure_leaves_nothing(tmp_path: Path) -> None:
    journal = CommitmentJournal(tmp_path / "journal")
    journal.directory.mkdir()
    (journal.directory / "1.2.3.99.json").mkdir()  # the name is taken by a directory
    with pytest.raises(OSError):
        journal.write(JournalEntry(REQUEST, "MODALITY"))
    assert sorted(p.name for p in journal.directory.iterdir()) == ["1.2.3.99.json"]


def test_unreadable_journal_entry_is_logged_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = CommitmentJournal(tmp_path)
    (tmp_path / "bad.json").write_text("{")
    journal.write(JournalEntry(REQUEST, "MODALITY"))
    assert journal.entries() == [JournalEntry(REQUEST, "MODALITY")]
    assert "bad.json" in caplog.text


# -- the desk, with a stand-in AE -----------------------------------------------------------
@dataclass
class FakeAssociation:
    statuses: list[int | None]
    role: bool = True
    sent: list[tuple[int, Dataset]] = field(default_factory=list)
    is_established: bool = True

    @property
    def negotiated(self) -> Any:
        context = AcceptedContext(
            1, sc.STORAGE_COMMITMENT_PUSH_MODEL, "1.2.840.10008.1.2", False, self.role
        )

        @dataclass
        class N:
            contexts: dict[int, AcceptedContext]

        return N({1: context})

    def send_n_event_report(
        self, ds: Dataset, event_type: int, class_uid: str, instance_uid: str
    ) -> tuple[Dataset, None]:
        assert (class_uid, instance_uid) == (
            sc.STORAGE_COMMITMENT_PUSH_MODEL,
            sc.STORAGE_COMMITMENT_INSTANCE,
        )
        self.sent.append((event_type, ds))
        status = Dataset()
        code = self.statuses.pop(0)
        if code is not None:
            status.Status = code
        return status, None

    def describe_failure(self) -> str:
        return "aborted"

    def release(self) -> None:
        self.is_established = False


@dataclass
class FakeAE:
    outcomes: list[FakeAssociation | None]
    proposed_roles: list[tuple[str, bool, bool]] = field(default_factory=list)
    called: list[tuple[str, int, str]] = field(default_factory=list)
    dialled: threading.Event = field(default_factory=threading.Event)

    def add_requested_context(self, uid: str, syntaxes: Any) -> None:
        assert uid == sc.STORAGE_COMMITMENT_PUSH_MODEL

    def propose_role(self, uid: str, scu_role: bool, scp_role: bool) -> None:
        self.proposed_roles.append((uid, scu_role, scp_role))

    def associate(self, host: str, port: int, ae_title: str, tls_args: Any) -> Any:
        self.called.append((host, port, ae_title))
        self.dialled.set()
        assoc = self.outcomes.pop(0)
        if assoc is None:

            class Refused:
                is_established = False

                def describe_failure(self) -> str:
                    return "connection refused"

            return Refused()
        return assoc


def desk_with(
    tmp_path: Path,
    ae: FakeAE,
    check: Callable[[Any], Any] | None = None,
    destinations: dict[str, tuple[str, int]] | None = None,
    retries: int = 2,
) -> CommitmentDesk:
    return CommitmentDesk(
        DeskSettings(
            "ARCHIVE",
            {"MODALITY": ("127.0.0.1", 4242)} if destinations is None else destinations,
            retries=retries,
            retry_interval=0.001,
        ),
        check=check or (lambda refs: [(r, None) for r in refs]),
        journal=CommitmentJournal(tmp_path / "journal"),
        make_ae=lambda title: ae,
    )


def information(uid: str = "1.2.3.99") -> Dataset:
    return sc.request_dataset(uid, REQUEST.references)


def submit(desk: CommitmentDesk, uid: str = "1.2.3.99") -> None:
    exchange = desk.request(1, sc.STORAGE_COMMITMENT_INSTANCE, information(uid), "MODALITY ")
    assert isinstance(exchange, sc.CommitmentExchange)
    assert desk.journal.holds(uid)
    desk.start(exchange, None)  # no association open: the report goes on a new one
    assert desk.wait_idle(10)


def test_report_on_a_new_association_with_the_scp_role(tmp_path: Path) -> None:
    assoc = FakeAssociation([st.SUCCESS])
    ae = FakeAE([assoc])
    desk = desk_with(tmp_path, ae)
    submit(desk)
    assert ae.proposed_roles == [(sc.STORAGE_COMMITMENT_PUSH_MODEL, False, True)]
    assert ae.called == [("127.0.0.1", 4242, "MODALITY")]
    ((event_type, ds),) = assoc.sent
    assert event_type == sc.ALL_COMMITTED and ds.TransactionUID == "1.2.3.99"
    assert not assoc.is_established  # released
    assert not desk.journal.holds("1.2.3.99")


def test_unreachable_requestor_is_retried_then_reported(tmp_path: Path) -> None:
    assoc = FakeAssociation([None, st.SUCCESS])  # the first report goes unanswered
    ae = FakeAE([None, assoc, assoc])
    desk = desk_with(tmp_path, ae)
    submit(desk)
    assert len(ae.called) == 3
    assert len(assoc.sent) == 2
    assert not desk.journal.holds("1.2.3.99")


def test_given_up_after_the_retries_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ae = FakeAE([None, None, None])
    desk = desk_with(tmp_path, ae, retries=2)
    submit(desk)
    assert len(ae.called) == 3
    assert "NOT delivered" in caplog.text and "connection refused" in caplog.text
    assert not desk.journal.holds("1.2.3.99")


def test_duplicate_transaction_is_reported_failed_and_the_first_kept(tmp_path: Path) -> None:
    assoc = FakeAssociation([st.SUCCESS])
    desk = desk_with(tmp_path, FakeAE([assoc]))
    desk.journal.write(JournalEntry(REQUEST, "MODALITY"))
    exchange = desk.request(1, sc.STORAGE_COMMITMENT_INSTANCE, information(), "MODALITY")
    assert isinstance(exchange, sc.CommitmentExchange) and exchange.duplicate
    desk.start(exchange, None)
    assert desk.wait_idle(10)
    ((event_type, ds),) = assoc.sent
    assert event_type == sc.FAILURES_EXIST
    assert ds.FailedSOPSequence[0].FailureReason == sc.DUPLICATE_TRANSACTION_UID
    assert desk.journal.holds("1.2.3.99")


def test_failures_are_reported_with_event_type_2(tmp_path: Path) -> None:
    assoc = FakeAssociation([st.SUCCESS])
    desk = desk_with(tmp_path, FakeAE([assoc]), check=lambda refs: [(r, 0x0112) for r in refs])
    submit(desk)
    ((event_type, ds),) = assoc.sent
    assert event_type == sc.FAILURES_EXIST
    assert ds.FailedSOPSequence[0].FailureReason == 0x0112
    assert "ReferencedSOPSequence" not in ds


def test_malformed_request_is_refused_and_nothing_journaled(tmp_path: Path) -> None:
    desk = desk_with(tmp_path, FakeAE([]))
    refused = desk.request(7, sc.STORAGE_COMMITMENT_INSTANCE, information(), "M")
    assert isinstance(refused, sc.RequestRefused) and refused.status == st.NO_SUCH_ACTION
    assert desk.journal.entries() == []


def test_a_journal_that_cannot_be_written_refuses_with_processing_failure(
    tmp_path: Path,
) -> None:
    desk = desk_with(tmp_path, FakeAE([]))
    desk.journal.directory.parent.mkdir(parents=True, exist_ok=True)
    desk.journal.directory.write_text("not a directory")
    refused = desk.request(1, sc.STORAGE_COMMITMENT_INSTANCE, information(), "MODALITY")
    assert isinstance(refused, sc.RequestRefused)
    assert refused.status == st.PROCESSING_FAILURE and "cannot be kept" in refused.comment


def test_stopping_keeps_the_request_and_a_restart_delivers_it(tmp_path: Path) -> None:
    ae = FakeAE([None])
    desk = desk_with(tmp_path, ae, retries=5)
    desk.settings.retry_interval = 3600.0  # waits until stopped
    exchange = desk.request(1, sc.STORAGE_COMMITMENT_INSTANCE, information(), "MODALITY")
    assert isinstance(exchange, sc.CommitmentExchange)
    desk.start(exchange, None)
    assert ae.dialled.wait(10)  # the first attempt failed: the retry waits an hour
    desk.stop()
    assert desk.wait_idle(10)
    assert desk.journal.holds("1.2.3.99")
    data = json.loads((desk.journal.directory / "1.2.3.99.json").read_text())
    assert data["requestor_ae"] == "MODALITY"
    # The next start takes it up and delivers it.
    assoc = FakeAssociation([st.SUCCESS])
    restarted = desk_with(tmp_path, FakeAE([assoc]))
    assert restarted.resume() == 1
    assert restarted.wait_idle(10)
    assert len(assoc.sent) == 1
    assert not restarted.journal.holds("1.2.3.99")


def test_no_address_for_the_requestor_is_given_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    desk = desk_with(tmp_path, FakeAE([]), destinations={})
    submit(desk)
    assert "may receive" in caplog.text
    assert not desk.journal.holds("1.2.3.99")


@pytest.mark.parametrize("separate", [False, True], ids=["in-process", "before-workers"])
def test_qrscp_resumes_journaled_requests_at_start(tmp_path: Path, separate: bool) -> None:
    """What ``qrscp`` does at start (with ``--workers`` N > 1 on a desk and an index of its
    own, so no forked worker inherits its threads): each journaled request is checked
    and reported on a new association, then forgotten."""
    from dimsefsm.archive.scp import QueryRetrieveSCP
    from dimsefsm.storage_commitment import ReportCollector, ReportListener
    from tests.interop.peers import LOCALHOST, free_port

    port = free_port()
    scp = QueryRetrieveSCP("QR", tmp_path / "store", destinations={"MOD": (LOCALHOST, port)})
    scp.load()
    held = stored(scp.index, "held")
    request = CommitmentRequest("1.2.3.77", (held, Reference(CT, "1.2.3.78")))
    scp.commitment.journal.write(JournalEntry(request, "MOD"))
    collector = ReportCollector()
    with ReportListener("MOD", (LOCALHOST, port), collector):
        desk, stop = scp.resume_commitments(separate=separate)
        outcome = collector.wait("1.2.3.77", 30)
        assert desk.wait_idle(30)
        stop()
    scp.close()
    assert outcome is not None
    assert outcome.committed == (held,)
    assert outcome.failed == ((Reference(CT, "1.2.3.78"), 0x0112),)
    assert (desk is scp.commitment) is not separate
    assert scp.commitment.journal.entries() == []


@dataclass
class AnsweredReport:
    """The report's operation once its response came (``start_n_request``'s return)."""

    done: bool = True

    def reply(self) -> tuple[Dataset, None]:
        status = Dataset()
        status.Status = st.SUCCESS
        return status, None


@dataclass
class OpenEngine:
    is_established: bool = True
    started: list[Any] = field(default_factory=list)

    def start_scp_operation(self, key: int, op: Any) -> None:
        assert key < 0  # never a Message ID a C-CANCEL could name
        self.started.append(op)


def test_an_answer_that_came_with_the_release_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The requestor answered the report and released at once: the engine closes the
    operation with the answer already in; the report was delivered, no new association."""
    from dimsefsm.services import normalized

    monkeypatch.setattr(normalized, "start_n_request", lambda *a, **k: AnsweredReport())
    ae = FakeAE([])
    desk = desk_with(tmp_path, ae)
    exchange = desk.request(1, sc.STORAGE_COMMITMENT_INSTANCE, information(), "MODALITY")
    assert isinstance(exchange, sc.CommitmentExchange)
    engine = OpenEngine()
    desk.start(exchange, engine)
    (op,) = engine.started
    op.step()  # the check, then the report on the requesting association
    assert exchange.state == "ReportingSame"
    engine.is_established = False
    op.close()  # released: the answer read in the same pump
    assert exchange.state == "Done" and op.done
    assert ae.called == [] and desk.journal.entries() == []
