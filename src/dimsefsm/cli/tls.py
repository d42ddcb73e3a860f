"""TLS flags with dcmtk's names and defaults, and the SSLContext they describe.

As in dcmtk, a peer's certificate is verified by default (``-rc``) against the
certificates given with ``+cf`` / ``+cd`` only: a hospital's DICOM PKI is its
own, so a server never trusts the system's public CAs for client
certificates.  A client given no ``+cf`` / ``+cd`` falls back to the system
CAs (dcmtk would trust nothing), and unlike dcmtk it also checks that the
server's certificate names the host it connects to, as any TLS client should.
The protocol floor is TLS 1.2, as in BCP 195 (dcmtk's default profile).

Sub-parsers taking these flags need ``prefix_chars="-+"``.  ``ssl`` loads only
when a TLS flag is given: a plain ``echoscu`` does not pay for OpenSSL.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn

from dimsefsm.cli.common import EXIT_USAGE
from dimsefsm.transport.tls import describe_tls_error

if TYPE_CHECKING:
    import ssl

    from dimsefsm.transport.tls import TlsArgs

REQUIRE, VERIFY, IGNORE = "require", "verify", "ignore"


def add_tls_args(parser: argparse.ArgumentParser, *, server: bool) -> None:
    group = parser.add_argument_group("transport layer security (TLS), as in dcmtk")
    stack = group.add_mutually_exclusive_group()
    stack.add_argument(
        "-tls",
        "--disable-tls",
        dest="enable_tls",
        action="store_const",
        const=None,
        help="use a normal TCP/IP connection (default)",
    )
    stack.add_argument(
        "+tls",
        "--enable-tls",
        dest="enable_tls",
        nargs=2,
        metavar=("KEY", "CERT"),
        help="use TLS with this private key and certificate (PEM files)",
    )
    if not server:
        stack.add_argument(
            "+tla",
            "--anonymous-tls",
            action="store_true",
            help="use TLS without a certificate of our own",
        )
    password = group.add_mutually_exclusive_group()
    password.add_argument(
        "+pw",
        "--use-passwd",
        dest="tls_password",
        metavar="PASSWORD",
        help="password of the private key (default: prompt if it is encrypted)",
    )
    password.add_argument(
        "-pw",
        "--null-passwd",
        dest="tls_password",
        action="store_const",
        const="",
        help="the private key's password is empty",
    )
    group.add_argument(
        "+cf",
        "--add-cert-file",
        dest="tls_cert_files",
        action="append",
        default=[],
        metavar="FILE",
        help="trust this certificate (a CA or the peer's own); repeatable",
    )
    group.add_argument(
        "+cd",
        "--add-cert-dir",
        dest="tls_cert_dirs",
        action="append",
        default=[],
        metavar="DIR",
        help="trust the certificates in this hashed directory (c_rehash); repeatable",
    )
    peer = group.add_mutually_exclusive_group()
    peer.add_argument(
        "-rc",
        "--require-peer-cert",
        dest="peer_cert",
        action="store_const",
        const=REQUIRE,
        help="verify the peer's certificate, fail if absent (default)",
    )
    if server:
        peer.add_argument(
            "-vc",
            "--verify-peer-cert",
            dest="peer_cert",
            action="store_const",
            const=VERIFY,
            help="verify the client's certificate if it sends one",
        )
    peer.add_argument(
        "-ic",
        "--ignore-peer-cert",
        dest="peer_cert",
        action="store_const",
        const=IGNORE,
        help="do not verify the peer's certificate",
    )
    parser.set_defaults(peer_cert=REQUIRE, anonymous_tls=False)


def client_tls(args: argparse.Namespace) -> TlsArgs | None:
    """``tls_args`` for ``AE.associate`` from the flags; None for plain TCP."""
    if args.enable_tls is None and not args.anonymous_tls:
        return None
    return client_context(args), args.host


def client_context(args: argparse.Namespace) -> ssl.SSLContext:
    """A client context from the flags: also what a TLS server uses to reach its C-MOVE
    destinations (our certificate, the same trusted CAs)."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.peer_cert == IGNORE:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif not _trust(context, args):
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    _load_own_certificate(context, args)
    return context


def server_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """``ssl_context`` for ``AE.start_server`` from the flags; None for plain TCP."""
    if args.enable_tls is None:
        if args.anonymous_tls:
            _usage(args, "a TLS server needs a certificate of its own: use +tls KEY CERT")
        return None
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_own_certificate(context, args)
    trusted = _trust(context, args)
    if args.peer_cert == REQUIRE:
        if not trusted:
            _usage(
                args,
                "--require-peer-cert (the default) needs the clients' CA: add +cf FILE "
                "(or -vc / -ic not to require a client certificate)",
            )
        context.verify_mode = ssl.CERT_REQUIRED
    elif args.peer_cert == VERIFY:
        context.verify_mode = ssl.CERT_OPTIONAL
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def _trust(context: ssl.SSLContext, args: argparse.Namespace) -> bool:
    """Load the +cf / +cd certificates; True if any were given."""
    for path in args.tls_cert_files:
        with _loading(args, f"+cf {path}"):
            context.load_verify_locations(cafile=path)
    for path in args.tls_cert_dirs:
        with _loading(args, f"+cd {path}"):
            context.load_verify_locations(capath=path)
    return bool(args.tls_cert_files or args.tls_cert_dirs)


def _load_own_certificate(context: ssl.SSLContext, args: argparse.Namespace) -> None:
    if args.enable_tls is None:
        return
    key, cert = args.enable_tls
    # OpenSSL says only "PEM lib" for a wrong password or a key that is not the cert's.
    hint = "not a PEM key and its certificate, or a wrong password (+pw)"
    with _loading(args, f"+tls {key} {cert}", hint):
        context.load_cert_chain(cert, key, password=args.tls_password)


@contextlib.contextmanager
def _loading(args: argparse.Namespace, what: str, hint: str | None = None) -> Iterator[None]:
    try:
        yield
    except (OSError, ValueError) as exc:
        import ssl

        if isinstance(exc, ssl.SSLError):
            reason = hint or describe_tls_error(exc)
        else:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _usage(args, f"{what}: cannot load: {reason}")


def _usage(args: argparse.Namespace, message: str) -> NoReturn:
    """Bad TLS flags end the command like an argparse error: message and exit code 2."""
    print(f"{getattr(args, 'command', 'dimsefsm')}: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)
