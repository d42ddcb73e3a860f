"""The Message value: properties read from its command, and its PDUs."""

from __future__ import annotations

import pytest

from dimsefsm import status as st
from dimsefsm.dimse import commands as cmd
from dimsefsm.dimse.errors import FragmentEncodeError
from dimsefsm.dimse.message import Message
from dimsefsm.dimse.reassemble import Reassembler
from dimsefsm.pdu.model import PDV

CT = "1.2.840.10008.5.1.4.1.1.2"


def test_request_properties() -> None:
    message = Message(1, cmd.store_rq(9, CT, "1.2.3"), b"\x00\x00")
    assert message.command_field == cmd.CommandField.C_STORE_RQ
    assert message.message_id == 9
    assert message.message_id_being_responded_to is None
    assert message.status is None
    assert message.is_request
    assert message.has_dataset


def test_response_properties() -> None:
    message = Message(1, cmd.store_rsp(9, st.COERCION_OF_DATA_ELEMENTS))
    assert message.command_field == 0x8001
    assert message.message_id is None
    assert message.message_id_being_responded_to == 9
    assert message.status == 0xB000
    assert not message.is_request
    assert not message.has_dataset


def test_cancel_is_a_request() -> None:
    assert Message(1, cmd.cancel_rq(4)).is_request


@pytest.mark.parametrize("data_set_type", [0x0001, 0x0102, 0x0000, 0xFFFF])
def test_any_value_but_0x0101_means_a_data_set(data_set_type: int) -> None:
    command = {**cmd.find_rq(1, CT), "CommandDataSetType": data_set_type}
    assert Message(1, command, b"").has_dataset


def _parse(pdus: list[bytes]) -> list[PDV]:
    pdvs = []
    for pdu in pdus:
        offset = 6
        while offset < len(pdu):
            length = int.from_bytes(pdu[offset : offset + 4], "big")
            control = pdu[offset + 5]
            pdvs.append(
                PDV(
                    pdu[offset + 4],
                    bool(control & 1),
                    bool(control & 2),
                    pdu[offset + 6 : offset + 4 + length],
                )
            )
            offset += 4 + length
    return pdvs


@pytest.mark.parametrize("max_pdu", [0, 64, 16384])
def test_to_pdus_round_trips_through_the_reassembler(max_pdu: int) -> None:
    message = Message(7, cmd.find_rq(2, CT), bytes(range(100)) * 3)
    assert Reassembler().feed(_parse(message.to_pdus(max_pdu))) == [message]


def test_to_pdus_refuses_a_data_set_the_command_does_not_announce() -> None:
    with pytest.raises(FragmentEncodeError, match="announced=False, present=True"):
        Message(1, cmd.echo_rq(1), b"\x00\x00").to_pdus(0)
    with pytest.raises(FragmentEncodeError, match="announced=True, present=False"):
        Message(1, cmd.find_rq(1, CT)).to_pdus(0)
