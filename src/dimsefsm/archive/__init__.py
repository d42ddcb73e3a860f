"""The Query/Retrieve archive application around the core and the Q/R service definitions.

Nothing in the protocol core imports this package; ``dimsefsm qrscp`` builds
its server from what is declared here: ``scp`` (the Q/R SCP), ``index`` and
``db`` (the SQL index of the stored instances), ``admission`` (what may be
filed), ``location`` (where the index lives), ``worklist`` (the Modality
Worklist directory), ``config`` (the ``qrscp.toml`` file and its defaults) and
``access`` (which peers may associate and what each may do). The service
definitions it serves (SOP classes, information models, matching) are
:mod:`dimsefsm.qr`.
"""
