"""Resident memory of a process and its peak, from /proc (psutil is not a dependency).

The kernel keeps the peak (VmHWM) for us, so a transfer's worst moment is never
missed between two samples.  Writing ``5`` to ``/proc/PID/clear_refs`` (Linux
4.0+) resets that peak to the current RSS: after a warm-up, the peak then
measures the transfer alone, not the interpreter's start-up.
"""

from __future__ import annotations

from dataclasses import dataclass

_KIB_PER_MIB = 1024


@dataclass(frozen=True)
class Memory:
    rss_mib: float
    peak_mib: float


def memory(pid: int) -> Memory:
    """Current and peak resident set size of ``pid`` (all threads) in MiB."""
    fields: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) / _KIB_PER_MIB
    return Memory(rss_mib=fields["VmRSS"], peak_mib=fields["VmHWM"])


def reset_peak(pid: int) -> bool:
    """Make VmHWM equal the current RSS; False where the kernel does not allow it."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True
