"""``python -m dimsefsm`` is the ``dimsefsm`` command."""

import sys

from dimsefsm.cli.main import run

sys.exit(run())
