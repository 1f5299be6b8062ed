"""Network namespaces from inside one process: setns(2) for the calling thread, and sockets made in a namespace.

A network namespace is a per-thread attribute, and a socket belongs to the namespace it was created in whichever
thread uses it later. So a component (or the lab) reaches a port inside a namespace without a process of its
own in there: `socket_in` enters the namespace for the socket(2) call and is back before returning, so the
event loop then uses the socket from the caller's namespace. `entered` keeps the calling thread inside for a
block (a netlink socket for pyroute2), `enter` for good (a thread pool's workers). Namespaces are named by path:
/run/netns/NAME (`ip netns`), or /proc/PID/ns/net.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import socket
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def path_of(name: str) -> str:
    """/run/netns/NAME for a name `ip netns` knows; a path is returned as it is."""
    return name if name.startswith("/") else f"/run/netns/{name}"


def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns {what}: {os.strerror(err)}")


def enter(netns: str) -> None:
    """Move the calling thread into the network namespace `netns` (a name or a path) for good."""
    fd = os.open(path_of(netns), os.O_RDONLY)
    try:
        _setns(fd, netns)
    finally:
        os.close(fd)


@contextlib.contextmanager
def entered(netns: str) -> Iterator[None]:
    """The calling thread inside the network namespace `netns` for the block, back in its own after."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(path_of(netns), os.O_RDONLY)
    try:
        _setns(target, netns)
        try:
            yield
        finally:
            _setns(home, "back")
    finally:
        os.close(target)
        os.close(home)


def socket_in(netns: str, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
              proto: int = 0) -> socket.socket:
    """A new socket in the network namespace `netns` (a name or a path), the calling thread back in its own."""
    with entered(netns):
        return socket.socket(family, type, proto)
