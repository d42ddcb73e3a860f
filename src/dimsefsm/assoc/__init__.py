"""Association negotiation: what the requestor proposes and what the acceptor agrees to."""

from dimsefsm.assoc.negotiation import (
    AcceptedContext,
    AcceptorPolicy,
    Negotiated,
    RequestorProposal,
    accept_or_reject,
    build_request,
    read_acceptance,
)

__all__ = [
    "AcceptedContext",
    "AcceptorPolicy",
    "Negotiated",
    "RequestorProposal",
    "accept_or_reject",
    "build_request",
    "read_acceptance",
]
