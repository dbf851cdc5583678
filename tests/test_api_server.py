"""The API's listening socket: how it is set up matters for every keep-alive client."""

from __future__ import annotations

import socket
from typing import Any


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
