"""C-GET workload: small instances/s and large MB/s retrieved over one association.

Every SCU (dimsefsm and pynetdicom in ``benchmarks.get_client``, dcmtk getscu)
retrieves one whole study from every SCP: dimsefsm and pynetdicom running
the same handler over the same files (``benchmarks.get_server``: the count,
then one Pending per file path), and dcmtk dcmqrscp loaded with the same
files through storescu.  So the dcmtk row compares the SCPs and the dcmtk
column compares the SCUs.  Receivers write every instance into a tmpfs
directory when there is one, so that the disk does not set the pace.

pynetdicom's SCP runs with TCP_NODELAY set on each connection: as shipped it
leaves Nagle's algorithm on, and every sub-operation then waits for the
requestor's delayed ACK (measured once, on a few small instances, in the
notes).  pynetdicom's SCU is measured as shipped: Nagle costs a requestor
nothing here.

Runs shorter than a second are repeated and the best kept; one failed run is
retried and reported in the notes.  The data, the figures and the run are
shared with C-MOVE (``benchmarks.retrieve``).
"""

from __future__ import annotations

from benchmarks.core import Goal
from benchmarks.retrieve import METRICS, RetrieveMatrix, RetrieveWorkload

GOALS: tuple[Goal, ...] = (
    Goal("small_per_s", ("dcmtk", "dimsefsm"), minimum=0.5, versus=("dcmtk", "dcmtk")),
    Goal("small_per_s", ("dcmtk", "dimsefsm"), minimum=8, versus=("dcmtk", "pynetdicom")),
    Goal("small_per_s", ("dimsefsm", "dcmtk"), minimum=0.4, versus=("dcmtk", "dcmtk")),
    Goal("small_per_s", ("dimsefsm", "dcmtk"), minimum=5, versus=("pynetdicom", "dcmtk")),
    Goal("large_mb_per_s", ("dcmtk", "dimsefsm"), minimum=0.7, versus=("dcmtk", "dcmtk")),
    Goal("large_mb_per_s", ("dimsefsm", "dcmtk"), minimum=0.7, versus=("dcmtk", "dcmtk")),
)


class GetMatrix(RetrieveMatrix):
    """The SCU itself receives every instance, into ``out_dir``."""

    tool = "getscu"
    client_module = "get_client"
    server_module = "get_server"

    def tool_options(self) -> list[str]:
        return ["-od", str(self.out_dir)]

    def client_args(self, name: str) -> list[str]:
        return [str(self.data.spec_path), name, str(self.out_dir)]


WORKLOAD = RetrieveWorkload(
    "get",
    "C-GET: small instances/s and large MB/s retrieved over one association",
    METRICS,
    GOALS,
    GetMatrix,
)
