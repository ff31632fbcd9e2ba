"""Importing Codex auth.json files (dashboard upload, API and CLI): parse, encrypt, upsert."""

from __future__ import annotations

from dataclasses import dataclass

from server.accounts import store
from server.accounts.authjson import InvalidAuthJson, parse_auth_json
from server.db import Database
from server.runtime.secretbox import SecretBox


@dataclass(frozen=True, slots=True)
class ImportResult:
    source: str
    account: store.AccountSummary | None = None
    created: bool = False
    error: str = ""
    code: str = "invalid_auth_json"

    def public(self) -> dict:
        if self.account is None:
            return {"source": self.source, "error": self.error, "code": self.code}
        return {"source": self.source, "created": self.created, **self.account.public()}


def pool_full(results: list[ImportResult]) -> bool:
    """Nothing was imported and at least one file was refused only because every slot is taken."""
    return not any(r.account for r in results) and any(r.code == store.PoolFull.code for r in results)


async def import_files(db: Database, box: SecretBox, files: list[tuple[str, bytes]]) -> list[ImportResult]:
    results = []
    for source, raw in files:
        try:
            creds = parse_auth_json(raw)
        except InvalidAuthJson as exc:
            results.append(ImportResult(source=source, error=str(exc)))
            continue
        try:
            upserted = await db.run(store.upsert_credentials, creds, box, db.account_capacity)
        except store.PoolFull as exc:
            results.append(ImportResult(source=source, error=str(exc), code=exc.code))
            continue
        results.append(ImportResult(source=source, account=upserted.account, created=upserted.created))
    return results


async def list_accounts(db: Database) -> list[store.AccountSummary]:
    return await db.run(store.list_accounts)
