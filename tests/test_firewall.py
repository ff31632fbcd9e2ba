"""The local-only rule, the client address behind trusted proxies, and which browser origins count as ours."""

from __future__ import annotations

import pytest
from sanic import Sanic
from sanic.request import Request

from server.auth.clients import client_address, request_host, request_scheme
from server.auth.crosssite import origin_allowed
from server.auth.firewall import is_local_request, is_loopback, require_local
from server.errors import ProxyError
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("192.0.2.10", False),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("", False),
        ("garbage", False),
    ],
)
def test_loopback_detection(address, local):
    assert is_loopback(address) is local


class _ConnInfo:
    def __init__(self, ip: str) -> None:
        self.client_ip = ip
        self.ssl = False


def _request(peer: str, headers: dict[str, str]) -> Request:
    app = Sanic("firewall-test")  # test_mode allows the name again
    request = Request(b"/v1/responses", headers, "1.1", "POST", None, app)
    request.conn_info = _ConnInfo(peer)
    return request


def test_a_spoofed_forwarded_for_does_not_make_a_remote_peer_local():
    request = _request("192.0.2.10", {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"})
    with pytest.raises(ProxyError) as caught:
        require_local(request, "The proxy")
    assert caught.value.status == 401 and caught.value.code == "local_only"
    assert "API-key auth" in caught.value.message


def test_a_local_peer_with_a_local_host_passes():
    require_local(_request("127.0.0.1", {"Host": "127.0.0.1:2455"}), "The dashboard API")
    require_local(_request("::1", {"Host": "localhost:2455"}), "The dashboard API")


def test_a_relayed_or_rebound_request_is_not_local_even_from_loopback():
    for headers in ({"Host": "127.0.0.1", "X-Forwarded-For": "203.0.113.9"}, {"Host": "evil.example:2455"}):
        with pytest.raises(ProxyError) as caught:
            require_local(_request("127.0.0.1", headers), "The dashboard API")
        assert caught.value.code == "local_only"


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://127.0.0.1:2455", "127.0.0.1:2455", True),
        ("https://codex.example.com", "codex.example.com", True),  # TLS proxy, not configured as trusted
        ("https://codex.example.com", "codex.example.com:443", True),
        ("https://evil.example", "codex.example.com", False),
        ("http://localhost:5173", "127.0.0.1:2455", False),
        ("http://127.0.0.1:2456", "127.0.0.1:2455", False),
        ("null", "127.0.0.1:2455", False),
        ("https://tools.example", "127.0.0.1:2455", True),  # CODEX_LB_ALLOWED_ORIGINS
    ],
)
def test_an_origin_is_the_servers_own_host_or_an_allowed_one(tmp_path, origin, host, allowed):
    request = _request("127.0.0.1", {"Host": host})
    request.app.ctx.settings = make_settings(tmp_path, allowed_origins="https://tools.example")
    assert origin_allowed(request, origin) is allowed


XFF, RFC = "x-forwarded-for", "forwarded"
CLIENT_HOP = "for=203.0.113.1;proto=https;host=codex.example.com"


@pytest.mark.parametrize(
    ("peer", "headers", "trust", "family", "address"),
    [
        ("10.0.0.5", {"X-Forwarded-For": "203.0.113.1"}, True, XFF, "203.0.113.1"),
        ("10.0.0.5", {"X-Forwarded-For": "203.0.113.1, 10.0.0.7"}, True, XFF, "203.0.113.1"),  # two proxies
        (
            "10.0.0.5",
            {"X-Forwarded-For": "127.0.0.1, 203.0.113.1"},
            True,
            XFF,
            "203.0.113.1",
        ),  # client's spoof
        ("10.0.0.5", {"Forwarded": 'for="[2001:db8::1]:4711";proto=https'}, True, RFC, "2001:db8::1"),
        ("10.0.0.5", {"Forwarded": "for=192.0.2.60:80, for=10.0.0.9"}, True, RFC, "192.0.2.60"),
        (
            "10.0.0.5",
            {"Forwarded": "for=127.0.0.1, for=192.0.2.60"},
            True,
            RFC,
            "192.0.2.60",
        ),  # client's spoof
        # Only the configured family is believed: a client's own header of the other passes proxies.
        (
            "10.0.0.5",
            {"X-Forwarded-For": "203.0.113.1", "Forwarded": "for=127.0.0.1"},
            True,
            XFF,
            "203.0.113.1",
        ),
        (
            "10.0.0.5",
            {"Forwarded": "for=203.0.113.1", "X-Forwarded-For": "127.0.0.1"},
            True,
            RFC,
            "203.0.113.1",
        ),
        ("10.0.0.5", {"Forwarded": "for=203.0.113.1"}, True, XFF, "10.0.0.5"),
        ("10.0.0.5", {}, True, XFF, "10.0.0.5"),
        (
            "192.0.2.10",
            {"X-Forwarded-For": "127.0.0.1"},
            True,
            XFF,
            "192.0.2.10",
        ),  # peer is not a proxy of ours
        ("10.0.0.5", {"X-Forwarded-For": "203.0.113.1"}, False, XFF, "10.0.0.5"),  # trust switched off
    ],
)
def test_the_client_address_believes_one_forwarding_family_only_from_trusted_proxies(
    tmp_path, peer, headers, trust, family, address
):
    request = _request(peer, headers)
    request.app.ctx.settings = make_settings(
        tmp_path,
        firewall_trusted_proxy_cidrs="10.0.0.0/8",
        firewall_trust_proxy_headers=str(trust).lower(),
        firewall_forwarded_header=family,
    )
    assert client_address(request) == address


@pytest.mark.parametrize(
    ("family", "headers", "scheme", "host"),
    [
        (
            XFF,
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "codex.example.com"},
            "https",
            "codex.example.com",
        ),
        # Proxies append: the nearest (trusted) proxy's value is the last one.
        (
            XFF,
            {"X-Forwarded-Proto": "http, https", "X-Forwarded-Host": "evil.example, codex.example.com"},
            "https",
            "codex.example.com",
        ),
        (XFF, {"Forwarded": "for=203.0.113.1;proto=https;host=evil.example"}, "http", "127.0.0.1:2455"),
        # RFC 7239: the parameters of the client's hop, not those a client wrote before it.
        (
            RFC,
            {"Forwarded": "for=127.0.0.1;proto=http;host=evil.example, " + CLIENT_HOP},
            "https",
            "codex.example.com",
        ),
        (RFC, {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}, "http", "127.0.0.1:2455"),
    ],
)
def test_the_scheme_and_host_come_from_the_believed_family(tmp_path, family, headers, scheme, host):
    request = _request("10.0.0.5", {"Host": "127.0.0.1:2455", "X-Forwarded-For": "203.0.113.1", **headers})
    request.app.ctx.settings = make_settings(
        tmp_path,
        firewall_trusted_proxy_cidrs="10.0.0.0/8",
        firewall_trust_proxy_headers="true",
        firewall_forwarded_header=family,
    )
    assert (request_scheme(request), request_host(request)) == (scheme, host)


def test_a_trusted_proxy_on_this_host_makes_a_request_local_only_when_it_names_a_loopback_client(tmp_path):
    settings = make_settings(
        tmp_path, firewall_trusted_proxy_cidrs="127.0.0.1/32", firewall_trust_proxy_headers="true"
    )
    cases = [
        ({"X-Forwarded-For": "127.0.0.1"}, True),
        ({"X-Forwarded-For": "203.0.113.1"}, False),
        ({}, False),
    ]
    for headers, local in cases:
        request = _request("127.0.0.1", {"Host": "127.0.0.1:2455", **headers})
        request.app.ctx.settings = settings
        assert is_local_request(request) is local, headers
