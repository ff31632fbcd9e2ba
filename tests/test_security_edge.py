"""Who a request is from and which name it was sent to, through HTTP (issue 25): the forwarded-header
matrix (header families × trusted/untrusted peer × agreeing/disagreeing chains), the Host allow-list
in every sign-in mode (DNS rebinding), and HSTS over HTTPS."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import make_settings
from tests.support.live_server import serve_in_process

TRUSTED = {"firewall_trusted_proxy_cidrs": "127.0.0.1/32", "firewall_trust_proxy_headers": "true"}
UNTRUSTED = {"firewall_trusted_proxy_cidrs": "10.0.0.0/8", "firewall_trust_proxy_headers": "true"}
FAMILIES = ("x-forwarded-for", "forwarded")
CLIENT = "203.0.113.50"  # the address the trusted proxy saw
LOOPBACK = "127.0.0.1"
STRANGER = "198.51.100.7"
PASSWORD = "correct horse battery"


def _chain(family: str, addresses: list[str]) -> dict[str, str]:
    if family == "forwarded":
        return {"Forwarded": ", ".join(f'for="{address}"' for address in addresses)}
    return {"X-Forwarded-For": ", ".join(addresses)}


def _other(family: str) -> str:
    return next(name for name in FAMILIES if name != family)


def _cases(family: str) -> list[tuple[str, dict[str, str], bool]]:
    """(what, headers, local through a trusted proxy); through an untrusted peer only `none` is local."""
    believed, other = (lambda chain: _chain(family, chain)), (lambda chain: _chain(_other(family), chain))
    return [
        ("none", {}, False),  # a trusted proxy that names nobody might relay anyone
        ("loopback client", believed([LOOPBACK]), True),
        ("remote client", believed([CLIENT]), False),
        ("client prepends loopback", believed([LOOPBACK, CLIENT]), False),
        # The red team's hole: the proxy's own family names the client, the client adds the other.
        ("other family claims loopback", {**believed([CLIENT]), **other([LOOPBACK])}, False),
        ("other family agrees", {**believed([LOOPBACK]), **other([LOOPBACK])}, True),
        ("other family disagrees", {**believed([LOOPBACK]), **other([STRANGER])}, False),
        ("x-real-ip disagrees", {**believed([LOOPBACK]), "X-Real-IP": STRANGER}, False),
        ("cf-connecting-ip agrees", {**believed([LOOPBACK]), "CF-Connecting-IP": LOOPBACK}, True),
    ]


async def _is_treated_as_local(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> bool:
    async with http.get(url + "/v1/models", headers=headers) as response:
        proxy_local = response.status == 200
        if not proxy_local:
            assert response.status == 401 and (await response.json())["error"]["code"] == "local_only"
    async with http.get(url + "/api/auth/status", headers=headers) as response:
        status = await response.json()
    async with http.post(url + "/api/api-keys", json={"name": "probe"}, headers=headers) as response:
        created = response.status == 201
        assert created or response.status == 401, await response.text()
    assert proxy_local == (status["role"] == "admin") == created, status
    return proxy_local


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-peer", "untrusted-peer"])
async def test_the_forwarded_header_matrix(tmp_path: Path, database_url: str, family: str, trusted: bool):
    settings = make_settings(
        tmp_path / "data",
        database_url,
        firewall_forwarded_header=family,
        **(TRUSTED if trusted else UNTRUSTED),
    )
    async with serve_in_process(settings) as live, aiohttp.ClientSession() as http:
        seen = {
            what: await _is_treated_as_local(http, live.url, headers) for what, headers, _ in _cases(family)
        }
    expected = {what: (local if trusted else what == "none") for what, _, local in _cases(family)}
    assert seen == expected


async def test_a_rotating_client_claim_neither_dodges_the_throttle_nor_forges_the_audit_address(
    tmp_path: Path, database_url: str
):
    """Behind a trusted proxy that writes X-Forwarded-For, a client's own `Forwarded` changes nothing."""
    settings = make_settings(tmp_path / "data", database_url, **TRUSTED)
    jar = aiohttp.CookieJar(unsafe=True)  # the session the password change starts
    async with serve_in_process(settings) as live, aiohttp.ClientSession(cookie_jar=jar) as http:
        local = _chain("x-forwarded-for", [LOOPBACK])
        async with http.post(
            live.url + "/api/auth/password", json={"new_password": PASSWORD}, headers=local
        ) as response:
            assert response.status == 204
        for n in range(3):
            headers = {"X-Forwarded-For": CLIENT, "Forwarded": f"for=198.51.100.{n}"}
            async with http.post(
                live.url + "/api/auth/login", json={"password": "a wrong guess"}, headers=headers
            ) as response:
                assert response.status == 401
        async with http.get(live.url + "/api/audit?action=auth.sign_in_failed", headers=local) as response:
            assert response.status == 200
            rows = (await response.json())["events"]
    assert [row["client_address"] for row in rows] == [CLIENT] * 3


REBOUND = "rebind.attacker.example"


async def _host_answers(http: aiohttp.ClientSession, url: str, host: str, extra: dict | None = None):
    """Status of an /api read, an /api change, a dashboard page and a proxy route sent to `host`."""
    port = url.rsplit(":", 1)[1]
    headers = {"Host": f"{host}:{port}", "Origin": f"http://{host}:{port}", **(extra or {})}
    answers = []
    for method, path, body in (
        ("GET", "/api/accounts", None),
        ("POST", "/api/api-keys", {"name": "rebound"}),
        ("GET", "/", None),
    ):
        async with http.request(method, url + path, json=body, headers=headers) as response:
            if response.status == 403:
                assert (await response.json())["error"]["code"] == "host_not_allowed"
            answers.append(response.status)
    async with http.get(url + "/health/live", headers=headers) as response:
        assert response.status == 200  # probes use service names
    return answers


HOSTS_ALLOWED = ["127.0.0.1", "localhost", "[::1]", "dash.localhost", "192.0.2.10", "codex.example.com"]
HOSTS_ALLOWED += ["team.example.org", "example.org", "tools.example"]


@pytest.mark.parametrize("mode", ["standard", "trusted_header", "disabled"])
async def test_the_host_allow_list_holds_in_every_sign_in_mode(tmp_path: Path, database_url: str, mode: str):
    settings = make_settings(
        tmp_path / "data",
        database_url,
        dashboard_auth_mode=mode,
        allowed_hosts="codex.example.com, .example.org",
        allowed_origins="https://tools.example",
        **TRUSTED,
    )
    async with serve_in_process(settings) as live, aiohttp.ClientSession() as http:
        for host in HOSTS_ALLOWED:
            assert 403 not in await _host_answers(http, live.url, host), host
        for host in (REBOUND, "example.org.attacker.example", "localhost.attacker.example"):
            assert await _host_answers(http, live.url, host) == [403, 403, 403], host
        # Through the trusted proxy, the name the browser used is the forwarded one.
        via_proxy = {"X-Forwarded-For": CLIENT, "X-Forwarded-Host": REBOUND}
        assert await _host_answers(http, live.url, "127.0.0.1", via_proxy) == [403, 403, 403]
        if mode == "disabled":
            # What the red team did: read the accounts and create a key from a rebound page. A listed
            # name still works.
            assert (await _host_answers(http, live.url, "codex.example.com"))[:2] == [200, 201]


async def test_any_host_is_allowed_with_a_star(tmp_path: Path, database_url: str):
    settings = make_settings(
        tmp_path / "data", database_url, dashboard_auth_mode="disabled", allowed_hosts="*"
    )
    async with serve_in_process(settings) as live, aiohttp.ClientSession() as http:
        assert (await _host_answers(http, live.url, REBOUND))[:2] == [200, 201]


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory) -> ssl.SSLContext:
    """One throw-away certificate for the module (an RSA key takes a moment to make)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_hsts_is_sent_over_https_only(tmp_path: Path, database_url: str, self_signed: ssl.SSLContext):
    settings = make_settings(tmp_path / "data", database_url, **TRUSTED)

    async def hsts(url: str, headers: dict[str, str]) -> str | None:
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/api/auth/status", headers=headers, ssl=False) as response:
                assert response.status == 200
                return response.headers.get("strict-transport-security")

    async with serve_in_process(settings) as live:
        assert await hsts(live.url, {}) is None
        assert await hsts(live.url, {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"}) == (
            "max-age=31536000"
        )
        assert await hsts(live.url, {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "http"}) is None
    untrusted = settings.with_overrides(firewall_trusted_proxy_cidrs=("10.0.0.0/8",))
    async with serve_in_process(untrusted) as live:  # a client's own claim of TLS is no TLS
        assert await hsts(live.url, {"X-Forwarded-Proto": "https"}) is None
    async with serve_in_process(settings, ssl=self_signed) as live:
        assert live.url.startswith("https://")
        assert await hsts(live.url, {}) == "max-age=31536000"
