"""The Query/Retrieve SCP application around the core: its configuration and access policy.

Nothing in the protocol core imports this package; ``dimsefsm qrscp`` builds
its server from what is declared here (``config``: the ``qrscp.toml`` file and
its defaults; ``access``: which peers may associate and what each may do).
"""
