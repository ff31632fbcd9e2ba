"""Rendezvous (highest-random-weight) hashing of a session key over accounts: every worker and replica
picks the same account for a session without talking, and adding an account moves only its share."""

from __future__ import annotations

import hashlib

_MASK = (1 << 64) - 1


def session_digest(session_key: str) -> int:
    """A stable 64-bit digest of the session key (the same in every process, unlike hash())."""
    return int.from_bytes(hashlib.blake2b(session_key.encode(), digest_size=8).digest(), "little")


def account_salt(account_id: int) -> int:
    """A stable 64-bit digest of the account id, computed once per roster load (see Candidate)."""
    key = account_id.to_bytes(8, "little", signed=True)
    return int.from_bytes(hashlib.blake2b(key, digest_size=8, person=b"codex-lb").digest(), "little")


def rendezvous_weight(session: int, salt: int) -> int:
    """The weight of an account for a session: the splitmix64 finaliser of the two digests combined.

    Every input bit flips about half the output bits, so this ranks accounts as well as hashing the pair,
    at a third of the cost of one blake2b per (session, account).
    """
    value = session ^ salt
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)
