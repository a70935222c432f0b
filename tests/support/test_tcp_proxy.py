"""The fault tests' TCP proxy must really cut and restore, or those tests prove nothing."""

import socket
import threading

import pytest


@pytest.fixture
def echo_server():
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn):
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(1)
    server.close()


def roundtrip(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(payload)
        return conn.recv(1024)


def test_proxy_passes_traffic_then_cuts_and_restores(echo_server, tcp_proxy):
    proxy = tcp_proxy(echo_server)
    assert roundtrip(proxy.port, b"hello") == b"hello"

    held = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    held.sendall(b"x")
    assert held.recv(10) == b"x"
    proxy.cut()
    assert held.recv(10) == b""  # the open connection was dropped
    try:
        answer = roundtrip(proxy.port, b"refused")
    except ConnectionError:
        answer = b""
    assert answer == b""  # new connections are closed at once
    held.close()

    proxy.restore()
    assert roundtrip(proxy.port, b"back") == b"back"


def test_url_for_keeps_credentials_and_swaps_the_address(tcp_proxy, echo_server):
    proxy = tcp_proxy(echo_server)
    assert proxy.url_for("amqp://guest:guest@127.0.0.1:5672//") == f"amqp://guest:guest@127.0.0.1:{proxy.port}//"
