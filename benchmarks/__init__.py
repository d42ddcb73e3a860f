"""``make bench``: dimsefsm side by side with dcmtk and pynetdicom, on this machine.

Every workload measures the same operations with each implementation as SCU
and as SCP in one run, so the ratios compare like with like.  Add a workload
by writing a module with a ``WORKLOAD`` object and listing it in
``benchmarks.workloads``.
"""
