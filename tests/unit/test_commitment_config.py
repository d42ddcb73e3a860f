"""qrscp.toml's ``[commitment]``: how often a Storage Commitment report is tried."""

from __future__ import annotations

from pathlib import Path

import pytest

from dimsefsm.archive.config import Commitment, ConfigError, format_settings, parse_settings


def test_commitment_table_is_read() -> None:
    text = "[commitment]\nretries = 5\nretry_interval = 2.5\n"
    settings = parse_settings(text, Path("/etc/qrscp.toml"))
    assert settings.commitment == Commitment(retries=5, retry_interval=2.5)
    assert "[commitment]\nretries = 5\nretry_interval = 2.5" in format_settings(settings)


def test_commitment_defaults() -> None:
    assert parse_settings("", Path("q.toml")).commitment == Commitment(3, 10.0, True)


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("[commitment]\nretries = -1\n", 2, "commitment.retries: -1 is out of range"),
        ("[commitment]\nretry_interval = 0\n", 2, "commitment.retry_interval: 0 must be"),
        ("[commitment]\nattempts = 2\n", 2, "commitment.attempts: unknown key"),
        ('commitment = "often"\n', 1, "commitment: must be a table"),
        ("[commitment]\nsame_association = 1\n", 2, "must be true or false"),
    ],
)
def test_commitment_mistakes_are_located(text: str, line: int, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, Path("q.toml"))
    assert caught.value.line == line
    assert says in str(caught.value)
