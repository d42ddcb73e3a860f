"""``python -m dimsefsm.conformance [FILE]``: write the conformance statement."""

import sys

from dimsefsm.conformance import main

sys.exit(main())
