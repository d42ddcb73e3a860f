"""A server listening on IPv6 keeps each peer as (host, port) (issue 15 item 2: ``--bind ::``).

An IPv6 socket's accept() gives four values; the server's log lines format
``host:port`` from the peer, so a four-value peer made every such line a
logging error instead of a message.
"""

from __future__ import annotations

import logging

import pytest

from dimsefsm import AE, evt

VERIFICATION = "1.2.840.10008.1.1"


def test_an_ipv6_peer_is_host_and_port(caplog: pytest.LogCaptureFixture) -> None:
    scp = AE("SCP")
    scp.add_supported_context(VERIFICATION)
    seen: list[object] = []

    def on_echo(event: object) -> int:
        seen.append(event.assoc.peer_address)  # type: ignore[attr-defined]
        return 0

    server = scp.start_server(("::1", 0), block=False, evt_handlers=[(evt.EVT_C_ECHO, on_echo)])
    try:
        port = server._listener.getsockname()[1]
        ae = AE("SCU")
        ae.add_requested_context(VERIFICATION)
        with caplog.at_level(logging.INFO, logger="dimsefsm"):
            assoc = ae.associate("::1", port, ae_title="SCP")
            assert assoc.send_c_echo().Status == 0
            assoc.release()
    finally:
        server.shutdown()
    assert len(seen) == 1 and isinstance(seen[0], tuple) and len(seen[0]) == 2
    assert seen[0][0] == "::1"
