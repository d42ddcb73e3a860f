"""``dimsefsm qrscp --workers N``: several processes serve one port and one index (issue 13.4).

The parent binds the port and supervises: a killed worker is replaced (with a
log line), SIGTERM to the parent stops every worker and leaves no process
behind.  Sixteen dcmtk storescu senders at once into two workers lose
nothing: every instance acknowledged is found by findscu and retrieved by
getscu, on SQLite and on PostgreSQL (dcmqrscp's fork per association lost a
third of such a load: "Index database error").
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from dimsefsm import AE
from dimsefsm.sop_class import VERIFICATION
from tests.data.make import make_study, write_study
from tests.interop.peers import LOCALHOST, DimsefsmServer, run_tools_at_once, wait_until
from tests.interop.test_qrscp_integrity import QR_AET, STORESCU, find_images, get_study

SERVING = re.compile(r"worker (\d+) \(pid (\d+)\) serving")


def workers_of(server: DimsefsmServer) -> dict[int, int]:
    """Worker number -> pid of its latest start, from the server's log."""
    return {int(n): int(pid) for n, pid in SERVING.findall(server.output())}


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def echo(port: int) -> int:
    ae = AE("ECHOSCU")
    ae.add_requested_context(VERIFICATION)
    with ae.associate(LOCALHOST, port, ae_title=QR_AET) as assoc:
        return int(assoc.send_c_echo().Status)


@pytest.mark.usefixtures("qrscp_backend")
def test_workers_serve_one_port_a_killed_one_is_replaced_and_sigterm_stops_all(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path
) -> None:
    server = dimsefsm_server(
        "qrscp", "-aet", QR_AET, "-od", str(tmp_path / "store"), "--workers", "2"
    )
    assert "(2 worker processes)" in server.output()
    first = workers_of(server)
    assert sorted(first) == [1, 2]
    assert all(parent_of(pid) == server.pid for pid in first.values())
    assert [echo(server.port) for _ in range(4)] == [0] * 4

    os.kill(first[1], signal.SIGKILL)
    wait_until(lambda: workers_of(server)[1] != first[1], "a new worker 1 serves")
    assert f"worker 1 (pid {first[1]}) was killed by SIGKILL: starting another" in server.output()
    replaced = workers_of(server)
    assert replaced[2] == first[2] and parent_of(replaced[1]) == server.pid
    assert [echo(server.port) for _ in range(4)] == [0] * 4

    os.kill(server.pid, signal.SIGTERM)  # the parent only: it must stop its workers itself
    wait_until(lambda: not server.alive, "the parent exits")
    assert server.returncode == 0
    assert all(gone(pid) for pid in (*first.values(), *replaced.values()))
    assert "SIGTERM: stopping 2 worker process(es)" in server.output()


def test_sixteen_concurrent_senders_into_two_workers_lose_nothing(
    dimsefsm_server: Callable[..., DimsefsmServer], database_url: str, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    server = dimsefsm_server(
        "qrscp", "-aet", QR_AET, "-od", str(store), "--database", database_url, "--workers", "2"
    )
    study_uid = generate_uid()
    commands: list[list[str]] = []
    sent: list[str] = []
    for n in range(16):
        study = make_study(4, n_series=1, patient_id="P16", study_instance_uid=study_uid)
        sent += [str(ds.SOPInstanceUID) for ds in study]
        files = write_study(tmp_path / f"sender{n}", study)
        commands.append(
            [STORESCU, "-aec", QR_AET, "-v", LOCALHOST, str(server.port), *map(str, files)]
        )
    logs = run_tools_at_once(commands, timeout=120)
    acknowledged = sum(log.count("Received Store Response (Success)") for log in logs)
    assert acknowledged == len(sent) == 64, "\n".join(logs)
    found = find_images(server.port, tmp_path / "find")
    assert sorted(str(ds.SOPInstanceUID) for ds in found) == sorted(sent)
    got = get_study(server.port, study_uid, tmp_path / "get")
    assert sorted(str(ds.SOPInstanceUID) for ds in got) == sorted(sent)
