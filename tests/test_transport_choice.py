"""Which upstream transport a turn takes under each setting."""

from __future__ import annotations

from server.proxy.transport import HTTP, WEBSOCKET, TransportChooser


def test_auto_uses_sockets_for_socket_clients_and_conversations_on_models_that_prefer_them():
    chooser = TransportChooser()
    assert chooser.choose("auto", client_websocket=True, model="gpt-5.1-codex-mini") == WEBSOCKET
    assert chooser.choose("auto", client_websocket=False, model="gpt-5.4", conversation=True) == WEBSOCKET
    # A one-off HTTP request gains nothing from an upstream socket.
    assert chooser.choose("auto", client_websocket=False, model="gpt-5.4", conversation=False) == HTTP
    assert chooser.choose("auto", client_websocket=False, model="gpt-5.1-codex-mini") == HTTP


def test_the_catalog_overrides_the_built_in_model_list():
    chooser = TransportChooser()
    assert chooser.choose("auto", client_websocket=False, model="gpt-5.4", model_prefers=False) == HTTP
    assert chooser.choose("auto", client_websocket=False, model="gpt-9", model_prefers=True) == WEBSOCKET


def test_explicit_settings_and_a_refused_upgrade_win():
    chooser = TransportChooser()
    assert chooser.choose("http", client_websocket=True, model="gpt-5.4") == HTTP
    assert chooser.choose("websocket", client_websocket=False, model="x", conversation=False) == WEBSOCKET
    chooser.upgrade_refused()
    assert chooser.choose("websocket", client_websocket=True, model="gpt-5.4") == HTTP
