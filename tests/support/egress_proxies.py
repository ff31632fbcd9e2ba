"""Real local egress proxies for tests: an HTTP CONNECT proxy and a SOCKS5 proxy on 127.0.0.1.

Each leaves from its own loopback address (`exit_host`, e.g. 127.0.0.2), so the fake backend's request
log (its `peer`) shows which proxy a request came through; each counts the tunnels it opened, and can
require credentials.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct


class _TunnelProxy:
    def __init__(self, exit_host: str, username: str = "", password: str = "") -> None:
        self.exit_host = exit_host
        self.username, self.password = username, password
        self.tunnels = 0
        self.refused = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and cut every open tunnel (a proxy that went down)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            target = await self._handshake(reader, writer)
            if target is None:
                return
            host, port = target
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    host, port, local_addr=(self.exit_host, 0)
                )
            except OSError:
                await self._answer(writer, ok=False)
                return
            self.tunnels += 1
            await self._answer(writer, ok=True)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _handshake(self, reader, writer):
        raise NotImplementedError

    async def _answer(self, writer, ok: bool) -> None:
        raise NotImplementedError


class HttpConnectProxy(_TunnelProxy):
    scheme = "http"

    async def _handshake(self, reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return None
        if self.username:
            expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            if headers.get("proxy-authorization") != expected:
                self.refused += 1
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return None
        host, _, port = target.rpartition(":")
        return host.strip("[]"), int(port)

    async def _answer(self, writer, ok: bool) -> None:
        writer.write(
            b"HTTP/1.1 200 Connection established\r\n\r\n" if ok else b"HTTP/1.1 502 Bad Gateway\r\n\r\n"
        )
        await writer.drain()


class Socks5Proxy(_TunnelProxy):
    scheme = "socks5"

    async def _handshake(self, reader, writer):
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        wanted = 2 if self.username else 0
        if version != 5 or wanted not in methods:
            writer.write(b"\x05\xff")
            return None
        writer.write(bytes([5, wanted]))
        if wanted == 2:
            _, ulen = await reader.readexactly(2)
            user = (await reader.readexactly(ulen)).decode()
            (plen,) = await reader.readexactly(1)
            password = (await reader.readexactly(plen)).decode()
            if (user, password) != (self.username, self.password):
                self.refused += 1
                writer.write(b"\x01\x01")
                return None
            writer.write(b"\x01\x00")
        _, command, _, kind = await reader.readexactly(4)
        if kind == 1:
            host = ".".join(str(b) for b in await reader.readexactly(4))
        elif kind == 3:
            (length,) = await reader.readexactly(1)
            host = (await reader.readexactly(length)).decode()
        else:
            raw = await reader.readexactly(16)
            host = ":".join(raw[i : i + 2].hex() for i in range(0, 16, 2))
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if command != 1:
            writer.write(b"\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00")
            return None
        return host, port

    async def _answer(self, writer, ok: bool) -> None:
        writer.write(b"\x05" + (b"\x00" if ok else b"\x05") + b"\x00\x01\x00\x00\x00\x00\x00\x00")
        await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()
