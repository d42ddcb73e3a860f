"""Chart toolkit: one declaration drives the running machine, its diagram and its coverage."""

from dimsefsm.fsm.chart import Chart, ChartError, Refusal, RefusedTrigger, Transition, transition
from dimsefsm.fsm.coverage import RECORDER, CoverageRecorder

__all__ = [
    "RECORDER",
    "Chart",
    "ChartError",
    "CoverageRecorder",
    "Refusal",
    "RefusedTrigger",
    "Transition",
    "transition",
]
