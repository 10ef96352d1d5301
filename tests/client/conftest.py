"""What the client's tests share: alice's token, and a TCP proxy on loopback between the
client and a live portal that counts what the client sends and can cut the line."""

import socket
import threading

import pytest

from portal.accounts.services import token_create


@pytest.fixture
def alice_key(alice) -> str:
    _, key = token_create(user=alice, name="client")
    return key


class CountingProxy:
    """Forwards every connection to the portal at `port`, counting the bytes sent to it.

    `cut()` closes every connection open now, both ways, as a network failure would;
    `drop_next_response()` lets the next request reach the portal but closes the line instead
    of passing its answer back (a timeout after the work was done).
    """

    def __init__(self, port: int):
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.sent = 0
        self.upstream = bytearray()  # everything sent, for counting requests
        self.websockets: list[str] = []  # the path of each WebSocket opened
        self._open: list[tuple[socket.socket, socket.socket]] = []
        self._drop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self):
        with self.lock:
            self.sent = 0
            self.upstream.clear()

    def drop_next_response(self):
        self._drop = True

    def cut(self) -> int:
        with self.lock:
            pairs, self._open = self._open, []
        for pair in pairs:
            self._close(pair)
        return len(pairs)

    def close(self):
        self.listener.close()
        self.cut()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(("127.0.0.1", self.target))
            pair = (client, server)
            with self.lock:
                self._open.append(pair)
            threading.Thread(target=self._pump, args=(pair, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(pair, False), daemon=True).start()

    def _pump(self, pair, upstream: bool):
        source, target = pair if upstream else pair[::-1]
        first = True
        try:
            while data := source.recv(65536):
                if upstream:
                    with self.lock:
                        self.sent += len(data)
                        self.upstream += data
                        if first and data.startswith(b"GET /ws/"):
                            self.websockets.append(data.split(b" ", 2)[1].decode())
                    first = False
                elif self._drop:
                    self._drop = False
                    break
                target.sendall(data)
        except OSError:
            pass
        self._close(pair)

    @staticmethod
    def _close(pair):
        for sock in pair:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


@pytest.fixture
def proxy_to():
    """`proxy_to(url)`: a CountingProxy in front of the portal at `url`."""
    proxies = []

    def make(url: str) -> CountingProxy:
        proxies.append(CountingProxy(int(url.rsplit(":", 1)[1])))
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.close()
