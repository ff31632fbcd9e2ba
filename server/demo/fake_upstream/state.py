"""Everything one running fake upstream remembers, and the bearer-token check every backend route uses.
Owns configuration (`/__config`), stats (`/__stats`), reset (`/__reset`) and account creation."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Mapping

from .accounts import Account, AccountRegistry
from .behaviour import Behaviour, BehaviourBook, check_keys
from .errors import Rejection, account_deactivated, account_mismatch, unauthorized
from .grants import Grants
from .request_log import RequestLog
from .tokens import ISSUED_NS_CLAIM, Identity, auth_json_of, identity_from_claims, mint_token_set, verify_jwt

_CLAIM_CACHE_LIMIT = 50_000
_CONFIG_KEYS = frozenset(
    {"defaults", "accounts", "next_login", "device_interval_s", "device_ttl_s", "authorize_error"}
)


class FakeState:
    def __init__(self) -> None:
        self.accounts = AccountRegistry()
        self.book = BehaviourBook()
        self.log = RequestLog()
        self.grants = Grants()
        self.unauthenticated = 0
        self._created = 0
        self._claims: dict[str, tuple[dict, Identity]] = {}

    # --- authentication -------------------------------------------------------------------------
    def authenticate(
        self, headers: Mapping[str, str], deactivated_status: int = 403
    ) -> tuple[Account, Behaviour]:
        """The caller's account and behaviour, or a Rejection shaped like the backend's 401/403."""
        authorization = headers.get("Authorization") or ""
        if authorization[:7].lower() != "bearer ":
            self.unauthenticated += 1
            raise unauthorized("missing_authorization")
        token = authorization[7:].strip()
        known = self._claims.get(token)
        if known is None:
            claims = verify_jwt(token)
            identity = identity_from_claims(claims) if claims else None
            if identity is None:
                self.unauthenticated += 1
                raise unauthorized("token_invalidated")
            if len(self._claims) >= _CLAIM_CACHE_LIMIT:
                self._claims.clear()
            known = self._claims[token] = (claims, identity)
        claims, identity = known
        account = self.accounts.by_id.get(identity.account_id) or self.accounts.register(identity)
        behaviour = self.book.of(identity.account_id)
        try:
            if behaviour.auth_error:
                raise unauthorized(behaviour.auth_error)
            if claims.get("exp", 0) < time.time():
                raise unauthorized("token_expired")
            if claims.get(ISSUED_NS_CLAIM, 0) <= account.tokens_bad_before_ns:
                raise unauthorized(account.tokens_bad_code)
            if behaviour.check_account_header:
                claimed = headers.get("chatgpt-account-id")
                if claimed and claimed != identity.account_id:
                    raise account_mismatch()
            if behaviour.deactivated:
                raise account_deactivated(deactivated_status)
        except Rejection as rejection:
            rejection.account, rejection.behaviour = account, behaviour
            raise
        return account, behaviour

    # --- accounts -------------------------------------------------------------------------------
    def identity_for_login(self, hint: str | None = None) -> Identity:
        """Who logs in through /oauth/authorize or a device code: the hint, else the login queue."""
        if hint:
            account = self.accounts.get(hint) or self.accounts.find_by_email(hint)
            if account is not None:
                return account.identity
            if "@" in hint:
                return Identity.of("acc_" + hashlib.sha256(hint.encode()).hexdigest()[:12], hint)
            return Identity.of(hint)
        spec = self.grants.next_login()
        return Identity.of(spec["account_id"], spec.get("email"), spec.get("plan_type"))

    def create_account(self, spec: dict) -> dict:
        """Register an account (optionally with behaviour) and answer its Codex CLI auth.json."""
        if not spec.get("account_id"):
            self._created += 1
        account_id = spec.get("account_id") or f"acc_{self._created}"
        identity = Identity.of(account_id, spec.get("email"), spec.get("plan_type"))
        if spec.get("behaviour"):
            self.book.merge(accounts={identity.account_id: spec["behaviour"]})
        account = self.accounts.register(identity)
        ttl = spec.get("access_ttl_s") or self.book.of(account.account_id).access_token_ttl_s
        return auth_json_of(mint_token_set(identity, ttl), identity)

    # --- configuration --------------------------------------------------------------------------
    def configure(self, config: dict) -> None:
        unknown = set(config) - _CONFIG_KEYS
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        check_keys(config.get("defaults") or {})
        self.book.merge(config.get("defaults"), config.get("accounts"))
        if "next_login" in config:
            logins = config["next_login"]
            logins = logins if isinstance(logins, list) else [logins]
            self.grants.login_queue = [{"account_id": x} if isinstance(x, str) else dict(x) for x in logins]
        if "device_interval_s" in config:
            self.grants.device_interval_s = int(config["device_interval_s"])
        if "device_ttl_s" in config:
            self.grants.device_ttl_s = float(config["device_ttl_s"])
        if "authorize_error" in config:
            self.grants.authorize_error = config["authorize_error"]

    def config_snapshot(self) -> dict:
        return {
            **self.book.snapshot(),
            "next_login": list(self.grants.login_queue),
            "device_interval_s": self.grants.device_interval_s,
            "device_ttl_s": self.grants.device_ttl_s,
            "authorize_error": self.grants.authorize_error,
        }

    # --- observation ----------------------------------------------------------------------------
    def stats(self) -> dict:
        accounts = {}
        totals: Counter = Counter()
        statuses: Counter = Counter()
        transports: Counter = Counter()
        for account_id, account in self.accounts.by_id.items():
            entry = account.stats.as_dict()
            entry.update(
                plan_type=account.identity.plan_type,
                email=account.identity.email,
                primary_used_tokens=account.primary.used_tokens,
                secondary_used_tokens=account.secondary.used_tokens,
            )
            accounts[account_id] = entry
            statuses.update(account.stats.statuses)
            transports.update(account.stats.transports)
            totals.update(
                {k: v for k, v in entry.items() if isinstance(v, int) and k != "max_concurrent_streams"}
            )
        total = dict(totals)
        total["statuses"] = {str(k): v for k, v in sorted(statuses.items())}
        total["transports"] = dict(transports)
        total["unauthenticated"] = self.unauthenticated
        return {"accounts": accounts, "totals": total}

    def reset(self) -> None:
        self.accounts.clear()
        self.book.clear()
        self.log.clear()
        self.grants.reset()
        self.unauthenticated = 0
        self._created = 0
        self._claims.clear()
