"""Start-up check that the encryption key file opens the tokens already stored in the database.

A wrong key (a replica given another key file, a data dir restored without its key) would otherwise
let workers start and fail on every account; the main process refuses to start with one clear line.
"""

from __future__ import annotations

from server.runtime import migrator
from server.runtime.secretbox import SecretBox, SecretBoxError, load_or_create_key


class WrongEncryptionKey(RuntimeError):
    pass


def verify_encryption_key(settings) -> None:
    box = SecretBox(load_or_create_key(settings.encryption_key_file))
    conn = migrator.connect(settings.database_url)
    try:
        cur = conn.cursor()
        cur.execute("SELECT id, access_token FROM account ORDER BY id LIMIT 1")
        row = cur.fetchone()
    finally:
        conn.close()
    if row is None:
        return
    try:
        box.decrypt(row[1])
    except SecretBoxError:
        raise WrongEncryptionKey(
            f"the encryption key file {settings.encryption_key_file} does not open the tokens stored in the"
            " database (account "
            f"{row[0]}): start with the key file this database was created with"
            " (CODEX_LB_ENCRYPTION_KEY_FILE)"
        ) from None
