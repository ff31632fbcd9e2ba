"""The encryption key file and the secret box that protects OAuth tokens at rest."""

from __future__ import annotations

import multiprocessing
import stat

import pytest

from server.config import ConfigError
from server.runtime.secretbox import SecretBox, SecretBoxError, load_or_create_key


def test_key_file_is_created_private_and_reused(tmp_path):
    path = tmp_path / "keys" / "encryption.key"
    first = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == first
    assert len(first) == 32


def test_round_trip_and_ciphertext_hides_plaintext(tmp_path):
    box = SecretBox(load_or_create_key(tmp_path / "k"))
    sealed = box.encrypt("refresh-token-value")
    assert "refresh-token-value" not in sealed
    assert box.decrypt(sealed) == "refresh-token-value"
    assert box.encrypt("same") != box.encrypt("same")  # random nonce per message


def test_wrong_key_is_a_clear_error(tmp_path):
    sealed = SecretBox(load_or_create_key(tmp_path / "a")).encrypt("secret")
    with pytest.raises(SecretBoxError, match="encryption key"):
        SecretBox(load_or_create_key(tmp_path / "b")).decrypt(sealed)


def test_malformed_key_file_names_the_setting(tmp_path):
    path = tmp_path / "k"
    path.write_text("too-short")
    with pytest.raises(ConfigError, match="CODEX_LB_ENCRYPTION_KEY_FILE"):
        load_or_create_key(path)


def _load(path_and_barrier):
    path, barrier = path_and_barrier
    barrier.wait()
    return load_or_create_key(path)


def test_workers_racing_to_create_the_key_agree(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(4)
        with ctx.Pool(4) as pool:
            keys = pool.map(_load, [(tmp_path / "race.key", barrier)] * 4)
    assert len(set(keys)) == 1
