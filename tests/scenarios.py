"""Re-run a test module's scenarios inside one coverage window.

A "both charts fully covered" test must not depend on which tests ran before
it (``pytest -k covered`` alone, ``-p randomly``, a single module): it runs
the scenarios itself inside ``RECORDER.during()``.  Listing them by hand (as
test_verification does) goes stale when a scenario is added; this runner takes
every ``test_*`` function of the module instead, expands its
``pytest.mark.parametrize`` marks and feeds it fresh fixture values, so a new
scenario counts towards the verdict the day it is written.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

import pytest

Fixtures = Mapping[str, Callable[[], Any]]


def _param_sets(func: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    """Every combination the function's parametrize marks ask pytest for."""
    axes: list[list[dict[str, Any]]] = []
    for mark in getattr(func, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names, values = mark.args[0], mark.args[1]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        axis = []
        for value in values:
            value = value.values if hasattr(value, "values") and hasattr(value, "marks") else value
            row = value if len(names) > 1 else (value,)
            axis.append(dict(zip(names, row, strict=True)))
        axes.append(axis)
    for combination in itertools.product(*axes):
        merged: dict[str, Any] = {}
        for part in combination:
            merged.update(part)
        yield merged


def run_module_scenarios(
    module: ModuleType,
    fixtures: Fixtures,
    *,
    before_each: Callable[[dict[str, Any]], None] | None = None,
    skip: tuple[str, ...] = ("test_both_charts_fully_covered",),
) -> int:
    """Call every scenario of ``module``; the number of calls made is returned.

    ``fixtures`` builds a fresh value per call for each argument that is not a
    parameter; ``before_each`` stands in for the module's autouse fixtures.
    A scenario that fails here fails the coverage test too, with its name.
    """
    calls = 0
    for name, func in sorted(vars(module).items()):
        if not name.startswith("test_") or name in skip or not inspect.isfunction(func):
            continue
        wanted = list(inspect.signature(func).parameters)
        for params in _param_sets(func):
            values = {arg: params[arg] if arg in params else fixtures[arg]() for arg in wanted}
            if before_each is not None:
                before_each(values)
            try:
                func(**values)
            except pytest.skip.Exception:
                continue
            except BaseException as exc:
                raise AssertionError(f"scenario {name}{params or ''} failed: {exc!r}") from exc
            calls += 1
    return calls
