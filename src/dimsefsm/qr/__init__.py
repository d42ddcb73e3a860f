"""Query/Retrieve: SOP class registry, information models, identifier checks, matching.

``registry`` says what each Q/R-family UID is; ``models`` checks identifiers
against the hierarchical models and builds C-FIND response identifiers;
``matching`` compiles a C-FIND identifier into a fast candidate filter.
"""

from __future__ import annotations

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
