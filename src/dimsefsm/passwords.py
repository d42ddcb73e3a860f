"""Salted password hashes for user identity (PS3.7 D.3.3.7), with the standard library only.

A stored hash is one self-describing string,
``scrypt$<n>$<r>$<p>$<salt, base64>$<hash, base64>``, so that the cost
parameters can be raised later without invalidating the hashes already in a
configuration file: :func:`verify_password` reads them back from the string.
scrypt is memory-hard (a GPU cannot try billions of guesses a second) and
every hash has its own random salt (two users with one password get different
lines, and no precomputed table applies).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
# n=2**14, r=8, p=1: 16 MiB and about 50 ms per check, the figures RFC 7914
# and Python's documentation use for interactive logins.
N, R, P = 1 << 14, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
# A configuration file must not make us allocate unbounded memory: scrypt
# needs 128 * n * r bytes.
_MAX_MEMORY = 256 * 1024 * 1024


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """A new salted scrypt hash of ``password``, parameters included."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password.encode("utf-8"), salt, n, r, p, HASH_BYTES)
    return "$".join((SCHEME, str(n), str(r), str(p), _b64(salt), _b64(digest)))


def verify_password(password: str | bytes, stored: str) -> bool:
    """True when ``password`` hashes to ``stored``; False for a malformed ``stored`` too.

    The final comparison is constant-time (:func:`hmac.compare_digest`), so the
    time taken does not tell how many leading bytes of a guess were right.
    """
    parsed = parse_hash(stored)
    if parsed is None:
        return False
    n, r, p, salt, expected = parsed
    secret = password.encode("utf-8") if isinstance(password, str) else password
    digest = _scrypt(secret, salt, n, r, p, len(expected))
    return hmac.compare_digest(digest, expected)


def parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    """(n, r, p, salt, hash) of a well-formed stored hash, else None.

    Well-formed: our scheme, n a power of two, memory within bounds, salt and
    hash non-empty base64.  Lengths are not policed beyond that: what
    :func:`hash_password` writes (16-byte salt, 32-byte hash) is the norm.
    """
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
    except ValueError:
        return None
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or 128 * n * r > _MAX_MEMORY:
        return None
    if not salt or not expected:
        return None
    return n, r, p, salt, expected


def is_valid_hash(stored: str) -> bool:
    """Whether a configuration value is a hash this module wrote (not, say, a plain password)."""
    return parse_hash(stored) is not None


def _scrypt(secret: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        secret, salt=salt, n=n, r=r, p=p, maxmem=_MAX_MEMORY + 1024 * 1024, dklen=length
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
