"""The local-only rule decides by the socket peer, never by forwarded headers."""

from __future__ import annotations

import pytest
from sanic import Sanic
from sanic.request import Request

from server.auth.firewall import is_loopback, require_local
from server.errors import ProxyError


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
