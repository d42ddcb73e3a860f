"""The ``dimsefsm`` command line: SCUs and SCPs with dcmtk's flag names."""
