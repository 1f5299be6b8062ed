"""The lab's TCP relay: accept on a listening socket and pipe each connection to one target address.

The host's relays (127.0.0.1 -> the apiserver's HTTPS and gRPC ports, Prometheus) and the registry forwarders
of the tests' nodes (a node's 127.0.0.1:5000 -> a registry elsewhere: lab.image_registry.start_forwarder) are
this program:

    python -m lab.relay --listen 127.0.0.1:5000 172.30.0.10:5000   # bind the listening address itself
    python -m lab.relay --fd 6 127.0.0.1:6443                       # a listening socket handed over (fd 6)

The process runs in the namespace it connects from; a listening socket made in another namespace (the host's,
by lab.processes.start_relay) keeps that namespace. Several of these run in a lab that mostly sits idle, so
the program is blocking sockets and two threads per connection, and imports nothing else: about 12 MiB of
memory where an asyncio one took 25 (asyncio alone brings ssl, concurrent.futures and more).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import threading

CHUNK = 65536
CONNECT_TIMEOUT = 10.0
# Each connection's two threads only loop on recv/sendall: a small stack, not the 8 MiB default reservation.
threading.stack_size(256 * 1024)


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"want HOST:PORT, got {text!r}")
    return host, int(port)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy src to dst until either side ends or fails; the connection ends with it, in both directions (a
    half-open pair would otherwise hold its threads for as long as the other peer keeps quiet)."""
    try:
        while data := src.recv(CHUNK):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):  # wakes the other direction's recv, which then ends too
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _connection(client: socket.socket, target: tuple[str, int]) -> None:
    try:
        upstream = socket.create_connection(target, timeout=CONNECT_TIMEOUT)
    except OSError:
        client.close()  # the target is down: the caller sees the connection closed, as it would without us
        return
    upstream.settimeout(None)
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def serve(listener: socket.socket, target: tuple[str, int]) -> None:
    """Accept forever; each connection gets its own thread (which starts the reverse direction's)."""
    while True:
        try:
            client, _ = listener.accept()
        except InterruptedError:
            continue
        threading.Thread(target=_connection, args=(client, target), daemon=True).start()


def listener_from(args: argparse.Namespace) -> socket.socket:
    if args.fd is not None:
        return socket.socket(fileno=args.fd)
    return socket.create_server(args.listen, backlog=128)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.relay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--listen", type=_address, help="HOST:PORT to bind and listen on")
    src.add_argument("--fd", type=int, help="a listening socket inherited as this file descriptor")
    p.add_argument("target", type=_address, help="HOST:PORT each connection is piped to")
    args = p.parse_args(argv)
    try:
        listener = listener_from(args)
    except OSError as e:
        print(f"lab.relay: cannot listen ({args.listen or f'fd {args.fd}'}): {e}", file=sys.stderr)
        return 1
    print(f"lab.relay: {listener.getsockname()[0]}:{listener.getsockname()[1]} -> "
          f"{args.target[0]}:{args.target[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        serve(listener, args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
