"""Importing Codex auth.json files (dashboard upload, API and CLI): parse, encrypt, upsert."""

from __future__ import annotations

from dataclasses import dataclass

from server.accounts import store
from server.accounts.authjson import InvalidAuthJson, parse_auth_json
from server.db import Database
from server.secretbox import SecretBox


@dataclass(frozen=True, slots=True)
class ImportResult:
    source: str
    account: store.AccountSummary | None = None
    created: bool = False
    error: str = ""

    def public(self) -> dict:
        if self.account is None:
            return {"source": self.source, "error": self.error}
        return {"source": self.source, "created": self.created, **self.account.public()}


async def import_files(db: Database, box: SecretBox, files: list[tuple[str, bytes]]) -> list[ImportResult]:
    results = []
    for source, raw in files:
        try:
            creds = parse_auth_json(raw)
        except InvalidAuthJson as exc:
            results.append(ImportResult(source=source, error=str(exc)))
            continue
        upserted = await db.run(store.upsert_credentials, creds, box)
        results.append(ImportResult(source=source, account=upserted.account, created=upserted.created))
    return results


async def list_accounts(db: Database) -> list[store.AccountSummary]:
    return await db.run(store.list_accounts)
