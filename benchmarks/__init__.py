"""``make bench``: dimsefsm side by side with dcmtk and pynetdicom, on this machine.

Every workload measures the same operations with each implementation as SCU
and as SCP in one run, so the ratios compare like with like.  Add a workload
by writing a module with a ``WORKLOAD`` object and listing it in
``benchmarks.workloads``; the run itself is shared:

* ``core``: figures, metrics, goals; ``report``: the tables;
* ``matrix``: every SCU against every SCP, with a workload's hooks;
* ``processes``: client runs (Python modules, dcmtk tools), dcmqrscp;
* ``client`` and ``server``: what the workloads' own client and SCP processes share;
* ``retrieve``: what C-GET (``get``) and C-MOVE (``move``) share.
"""
