"""Query/Retrieve: SOP class registry, information models, identifier checks, matching.

``registry`` says what each Q/R-family UID is; ``models`` checks identifiers
against the hierarchical models and builds C-FIND response identifiers;
``matching`` compiles a C-FIND identifier into a fast candidate filter.

The names below are loaded on first use: every association imports the
registry (through :mod:`dimsefsm.sop_class`), and a C-ECHO should not pay for
the matching and model code it never runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dimsefsm.qr.matching import Matcher, compile_query, matches
    from dimsefsm.qr.models import (
        MODELS,
        IdentifierProblem,
        InformationModel,
        Level,
        check_identifier,
        check_request,
        response_identifier,
    )
    from dimsefsm.qr.registry import (
        QR_SOP_CLASSES,
        QRSopClass,
        find_classes,
        get_classes,
        lookup,
        move_classes,
        register_all,
    )

_WHERE = {
    "Matcher": "matching",
    "compile_query": "matching",
    "matches": "matching",
    "MODELS": "models",
    "IdentifierProblem": "models",
    "InformationModel": "models",
    "Level": "models",
    "check_identifier": "models",
    "check_request": "models",
    "response_identifier": "models",
    "QR_SOP_CLASSES": "registry",
    "QRSopClass": "registry",
    "find_classes": "registry",
    "get_classes": "registry",
    "lookup": "registry",
    "move_classes": "registry",
    "register_all": "registry",
}

__all__ = [
    "MODELS",
    "QR_SOP_CLASSES",
    "IdentifierProblem",
    "InformationModel",
    "Level",
    "Matcher",
    "QRSopClass",
    "check_identifier",
    "check_request",
    "compile_query",
    "find_classes",
    "get_classes",
    "lookup",
    "matches",
    "move_classes",
    "register_all",
    "response_identifier",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"dimsefsm.qr.{module}"), name)
