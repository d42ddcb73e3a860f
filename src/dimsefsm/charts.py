"""Every chart of the library, in one place, for rendering, docs and the coverage gate."""

from __future__ import annotations

import importlib

from dimsefsm.fsm.chart import Chart, registered_charts

# Modules that declare charts; importing them registers their charts.
CHART_MODULES = (
    "dimsefsm.ul.chart",
    "dimsefsm.engine",
    "dimsefsm.services.verification",
    "dimsefsm.services.storage",
    "dimsefsm.services.find",
    "dimsefsm.services.get",
    "dimsefsm.services.move",
    "dimsefsm.services.mpps",
    "dimsefsm.services.normalized",
    "dimsefsm.services.commitment",
)


def all_charts() -> list[Chart]:
    for module in CHART_MODULES:
        importlib.import_module(module)
    return sorted(registered_charts().values(), key=lambda c: c.name)
