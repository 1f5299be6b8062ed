"""lab.relay, the lab's TCP relay (registry forwarders, the host's relays), on loopback sockets: bytes both
ways, an end on either side ends the connection, a target that is down closes the caller's connection, and the
program serves a listening socket handed over by file descriptor (as lab.processes.start_relay hands it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from lab import relay

TIMEOUT = 5.0


def _server(handle: Callable[[socket.socket], None]) -> tuple[socket.socket, tuple[str, int]]:
    srv = socket.create_server(("127.0.0.1", 0))

    def loop() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv, srv.getsockname()


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


@pytest.fixture
def relayed() -> Iterator[Callable[[tuple[str, int]], tuple[str, int]]]:
    """Starts relay.serve on a loopback port towards a target; returns that port's address."""
    listeners: list[socket.socket] = []

    def start(target: tuple[str, int]) -> tuple[str, int]:
        lst = socket.create_server(("127.0.0.1", 0))
        listeners.append(lst)
        threading.Thread(target=relay.serve, args=(lst, target), daemon=True).start()
        return lst.getsockname()

    yield start
    for lst in listeners:
        lst.close()


def _recv_all(s: socket.socket) -> bytes:
    out = b""
    while data := s.recv(65536):
        out += data
    return out


def test_bytes_go_both_ways(relayed: Callable[[tuple[str, int]], tuple[str, int]]) -> None:
    srv, target = _server(_echo)
    payload = os.urandom(300_000)
    with srv, socket.create_connection(relayed(target), timeout=TIMEOUT) as c:
        sender = threading.Thread(target=c.sendall, args=(payload,))
        sender.start()
        got = b""
        while len(got) < len(payload):
            data = c.recv(65536)
            assert data, f"relay closed after {len(got)} of {len(payload)} bytes"
            got += data
        sender.join()
    assert got == payload


def test_target_closing_ends_the_callers_connection(relayed: Callable[[tuple[str, int]], tuple[str, int]]) -> None:
    def goodbye(conn: socket.socket) -> None:
        with conn:
            conn.sendall(b"bye")

    srv, target = _server(goodbye)
    with srv, socket.create_connection(relayed(target), timeout=TIMEOUT) as c:
        assert _recv_all(c) == b"bye"


def test_caller_closing_ends_the_targets_connection(relayed: Callable[[tuple[str, int]], tuple[str, int]]) -> None:
    seen: list[bytes] = []
    ended = threading.Event()

    def reader(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(TIMEOUT)
            seen.append(_recv_all(conn))
            ended.set()

    srv, target = _server(reader)
    with srv:
        c = socket.create_connection(relayed(target), timeout=TIMEOUT)
        c.sendall(b"hello")
        c.close()
        assert ended.wait(TIMEOUT), "the target's side of the connection stayed open after the caller closed"
    assert seen == [b"hello"]


def test_target_down_closes_the_connection(relayed: Callable[[tuple[str, int]], tuple[str, int]]) -> None:
    free = socket.create_server(("127.0.0.1", 0))
    target = free.getsockname()
    free.close()  # nothing listens there now
    with socket.create_connection(relayed(target), timeout=TIMEOUT) as c:
        try:
            assert c.recv(1) == b""
        except ConnectionResetError:
            pass


def test_program_serves_a_handed_over_socket() -> None:
    srv, target = _server(_echo)
    lst = socket.create_server(("127.0.0.1", 0))
    proc = subprocess.Popen([sys.executable, "-m", "lab.relay", "--fd", str(lst.fileno()), f"{target[0]}:{target[1]}"],
                            pass_fds=[lst.fileno()], stdout=subprocess.PIPE, text=True)
    try:
        address = lst.getsockname()
        lst.close()  # the child holds it now
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"lab.relay: {address[0]}:{address[1]} -> {target[0]}:{target[1]}"
        with srv, socket.create_connection(address, timeout=TIMEOUT) as c:
            c.sendall(b"ping")
            assert c.recv(4) == b"ping"
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_program_refuses_a_bad_address() -> None:
    res = subprocess.run([sys.executable, "-m", "lab.relay", "--listen", "nowhere", "127.0.0.1:1"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert "want HOST:PORT, got 'nowhere'" in res.stderr
