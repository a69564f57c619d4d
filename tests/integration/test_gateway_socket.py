"""The gateway's listening socket hands asyncio connections with Nagle's algorithm off.

asyncio sets ``TCP_NODELAY`` only on sockets whose protocol is ``IPPROTO_TCP``; a socket
made with the default protocol 0 keeps Nagle on, and every answer written in two parts
waits for the client's delayed ACK (~40 ms, as ``bench.gateway`` showed).
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from fusionbus.cli.gateway import _bind

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def test_accepted_connections_have_nagle_off() -> None:
    sock = _bind("127.0.0.1", 0, 262_144)
    nodelay: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def accepted(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = writer.get_extra_info("socket")
        nodelay.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=sock)
    async with server:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        assert await asyncio.wait_for(nodelay, 10) != 0
        writer.close()
        await writer.wait_closed()
