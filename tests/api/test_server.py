"""The API server: its listening socket (it matters for every keep-alive client) and its schema page."""

from __future__ import annotations

import socket
from typing import Any

import httpx


def test_the_api_socket_disables_nagle_so_keep_alive_responses_do_not_wait_for_delayed_acks(live_node: Any) -> None:
    # asyncio turns TCP_NODELAY on only for sockets that declare IPPROTO_TCP; a response written
    # in two parts (headers, body) otherwise waits ~40 ms for the client's delayed ACK
    from blokauto.api.server import ApiServer

    server = ApiServer(live_node.node, "127.0.0.1", 0)
    try:
        assert server.sock.proto == socket.IPPROTO_TCP
        assert server.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        server.sock.close()


def test_the_schema_page_loads_nothing_from_other_hosts(live_node):
    """/schema works offline: every script, style and icon it loads is served by the node."""
    import re

    page = httpx.get(live_node.url + "/schema", timeout=10)
    assert page.status_code == 200
    refs = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert refs and all(ref.startswith("/") for ref in refs), refs
    for ref in refs:
        assert httpx.get(live_node.url + ref, timeout=10).status_code == 200, ref
