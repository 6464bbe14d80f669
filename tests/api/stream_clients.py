"""Clients of the streaming API for tests: a Mastodon.py listener that records what arrives, an
aiohttp WebSocket client on its own thread, a reader of raw event streams that can stop reading,
and which server process holds a connection."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path
from typing import Any

import aiohttp
from mastodon import StreamListener


class Recorder(StreamListener):
    """Records (event, payload) pairs as Mastodon.py decodes them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.heartbeats = 0

    def on_any_event(self, name, data=None):
        self.events.append((name, data))

    def on_unknown_event(self, name, unknown_event=None):
        pass

    def handle_heartbeat(self):
        self.heartbeats += 1

    def named(self, name: str) -> list[Any]:
        return [data for event, data in list(self.events) if event == name]


def close_event_stream(handle: Any) -> None:
    """Close a Mastodon.py event stream (run_async=True) now. Its handle.close() closes the response
    while the stream's thread is blocked reading it, and that close waits for the read: until the
    server's next heartbeat, up to 15 s. Shutting the socket down first ends the read at once."""
    handle.closed = True
    response = handle.connection
    sock = getattr(getattr(getattr(response, "raw", None), "connection", None), "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the server closed it already
    handle.close()
    handle.join(5)


class SocketClient:
    """An aiohttp WebSocket client running on its own thread and event loop (the tests drive the
    browser synchronously), collecting every message as decoded JSON."""

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, protocols: tuple[str, ...] = ()) -> None:
        self.messages: list[dict] = []
        self.closed = threading.Event()
        self.protocol: str | None = None
        self.local_port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        try:
            self._call(self._connect(url, headers or {}, protocols))
        except BaseException:
            self._stop_loop()
            raise

    def _call(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _connect(self, url: str, headers: dict[str, str], protocols: tuple[str, ...]) -> None:
        self._session = aiohttp.ClientSession()
        try:
            self._ws = await self._session.ws_connect(url, headers=headers, protocols=protocols, autoping=True)
        except BaseException:
            await self._session.close()
            raise
        self.protocol = self._ws.protocol
        self.local_port = self._ws.get_extra_info("sockname")[1]
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.messages.append(json.loads(msg.data))
        finally:
            self.closed.set()

    def send(self, message: dict) -> None:
        self._call(self._ws.send_str(json.dumps(message)))

    def events(self, name: str, stream: list[str] | None = None) -> list[dict]:
        return [m for m in list(self.messages) if m.get("event") == name and (stream is None or m["stream"] == stream)]

    def errors(self) -> list[dict]:
        return [m for m in list(self.messages) if "error" in m]

    async def _close(self) -> None:
        await self._ws.close()
        await self._session.close()

    def close(self) -> None:
        if not self._loop.is_running():
            return  # closed already
        try:
            self._call(self._close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def raw_event_stream(port: int, path: str, token: str, *, receive_buffer: int | None = None) -> socket.socket:
    """An event stream opened on a plain socket (optionally with a tiny receive buffer, for a reader
    that stops reading); the caller reads, or does not."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                 f"Accept: text/event-stream\r\n\r\n".encode())
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes the connection; (data, closed by the server)."""
    sock.settimeout(timeout)
    data = bytearray()
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return bytes(data), True
            data += chunk
    except ConnectionResetError:
        return bytes(data), True
    except socket.timeout:
        return bytes(data), False


def server_holds_connection(server_port: int, client_port: int) -> bool:
    """Whether the server's end of the connection from client_port is still open (ESTABLISHED in
    /proc/net/tcp): read without reading the client's socket, which would unblock a stalled reader."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if (int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port
                and state == "01"):
            return True
    return False


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            target = fd.readlink()
        except OSError:
            continue
        if str(target).startswith("socket:["):
            found.add(str(target)[8:-1])
    return found


def serving_pid(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """Which of the server's processes holds the connection from client_port (from /proc/net/tcp)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            inode = fields[9]
    if inode is None:
        return None
    return next((pid for pid in pids if inode in _socket_inodes(pid)), None)
