"""``dimsefsm echoscu`` and ``dimsefsm echoscp``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from dimsefsm.ae import AE, HandlerList
from dimsefsm.cli.common import (
    EXIT_ABORTED,
    EXIT_FAILED_STATUS,
    EXIT_OK,
    EXIT_TIMEOUT,
    add_listen_args,
    add_logging,
    add_peer_args,
    add_server_args,
    add_timeouts,
    apply_network_args,
    cannot_listen,
    favour_latency,
    setup_logging,
    stop_on_sigterm,
    verbose,
)
from dimsefsm.cli.connect import add_identity_args, open_association, require_context
from dimsefsm.cli.tls import add_tls_args, server_tls
from dimsefsm.sop_class import VERIFICATION

if TYPE_CHECKING:
    import ssl


def add_echoscu(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("echoscu", help="send C-ECHO (Verification SCU)", prefix_chars="-+")
    add_peer_args(p, "ECHOSCU")
    p.add_argument("--repeat", type=int, default=1, metavar="N", help="send N echoes")
    add_timeouts(p)
    add_tls_args(p, server=False)
    add_identity_args(p)
    add_logging(p)
    p.set_defaults(run=run_echoscu)


def echoscu_contexts(ae: AE) -> None:
    """What echoscu proposes (also what the conformance statement lists)."""
    ae.add_requested_context(VERIFICATION)


def run_echoscu(args: argparse.Namespace) -> int:
    setup_logging(args)
    ae = AE(args.aetitle)
    echoscu_contexts(ae)
    apply_network_args(ae, args)
    assoc = open_association("echoscu", ae, args)
    if isinstance(assoc, int):
        return assoc
    refused = require_context("echoscu", assoc, args, VERIFICATION)
    if refused is not None:
        return refused
    for _ in range(args.repeat):
        echo = assoc.echo_and_wait()  # the Status as a number: no pydicom Dataset to build
        if echo.response is None:
            print(f"echoscu: no C-ECHO response: {assoc.describe_failure()}", file=sys.stderr)
            return EXIT_TIMEOUT if assoc.timed_out else EXIT_ABORTED
        status = echo.status
        if status != 0:
            code = f"0x{status:04X}" if isinstance(status, int) else repr(status)
            print(f"echoscu: C-ECHO failed with status {code}", file=sys.stderr)
            assoc.release()
            return EXIT_FAILED_STATUS
    assoc.release()
    if verbose(args):
        print("echoscu: C-ECHO succeeded", file=sys.stderr)
    return EXIT_OK


def add_echoscp(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("echoscp", help="answer C-ECHO (Verification SCP)", prefix_chars="-+")
    add_listen_args(p, "ECHOSCP")
    add_server_args(p)
    add_timeouts(p)
    add_tls_args(p, server=True)
    add_logging(p)
    p.set_defaults(run=run_echoscp)


def echoscp_ae(args: argparse.Namespace) -> AE:
    """echoscp's AE from its flags (also what the conformance statement describes)."""
    ae = AE(args.aetitle)
    ae.add_supported_context(VERIFICATION)
    apply_network_args(ae, args)
    return ae


def run_echoscp(args: argparse.Namespace) -> int:
    setup_logging(args)
    ae = echoscp_ae(args)
    serve(ae, (args.bind, args.port), "echoscp", ssl_context=server_tls(args))
    return EXIT_OK


def serve(
    ae: AE,
    address: tuple[str, int],
    name: str,
    handlers: HandlerList | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Run a server in the foreground until Ctrl-C or SIGTERM, then shut down cleanly."""
    stop_on_sigterm()
    favour_latency()
    try:
        server = ae.start_server(
            address, block=False, evt_handlers=handlers, ssl_context=ssl_context
        )
    except OSError as exc:
        raise cannot_listen(address, exc) from None
    host, port = server.address
    host = f"[{host}]" if ":" in host else host
    secure = " (TLS)" if ssl_context is not None else ""
    print(f"{name}: {ae.ae_title} listening on {host}:{port}{secure}", file=sys.stderr, flush=True)
    try:
        if server._accept_thread is not None:
            server._accept_thread.join()
    except KeyboardInterrupt:
        print(f"{name}: shutting down", file=sys.stderr, flush=True)
    finally:
        server.shutdown()
