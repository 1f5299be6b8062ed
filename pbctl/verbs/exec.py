"""exec: run a command in a container through the apiserver (which proxies to the pod's kubelet); attach:
join the container's own process the same way (`stream` serves both).

With -i, stdin is streamed; with -t the local terminal is put in raw mode so the remote shell owns it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import stat
import sys
import termios
import tty as ttymod
from collections.abc import AsyncIterator

from pbctl import verb
from pbctl.common import CliError, Ctx


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--stdin", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-c", "--container", default="")
    p.add_argument("pod")
    p.add_argument("cmd", nargs="*", metavar="-- COMMAND [args...]")


async def _stdin_chunks() -> AsyncIterator[bytes]:
    # A reader callback rather than a thread: a thread blocked in read() would keep pbctl alive after
    # the remote command ends.
    loop = asyncio.get_running_loop()
    try:
        fd = sys.stdin.fileno()
        os.fstat(fd)
    except (OSError, ValueError, io.UnsupportedOperation):
        return  # no usable stdin (closed, or replaced by a harness): nothing to send
    if stat.S_ISREG(os.fstat(fd).st_mode):  # a redirected file cannot be polled: send it whole
        data = sys.stdin.buffer.read()
        if data:
            yield data
        return
    q: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
        q.put_nowait(data)

    loop.add_reader(fd, readable)
    try:
        while True:
            data = await q.get()
            if not data:
                return
            yield data
    finally:
        loop.remove_reader(fd)


async def run_exec(ctx: Ctx, args: argparse.Namespace) -> int:
    """pbctl exec [-i] [-t] POD [-c CONTAINER] -- CMD..."""
    if not args.cmd:
        raise CliError("you must specify at least one command for the container")
    return await stream(ctx, args, list(args.cmd), attach=False)


async def stream(ctx: Ctx, args: argparse.Namespace, command: list[str], *, attach: bool) -> int:
    pod = args.pod.split("/", 1)[1] if args.pod.startswith(("pod/", "pods/")) else args.pod
    use_tty = args.tty and sys.stdin.isatty()
    saved = None
    if use_tty:
        saved = termios.tcgetattr(sys.stdin.fileno())
        ttymod.setraw(sys.stdin.fileno())
    code = 0
    try:
        async for out in ctx.client.pod_exec(ctx.namespace, pod, command, container=args.container,
                                             stdin=_stdin_chunks() if args.stdin else None, tty=use_tty,
                                             attach=attach):
            which = out.WhichOneof("output")
            if which == "stdout":
                sys.stdout.buffer.write(out.stdout)
                sys.stdout.buffer.flush()
            elif which == "stderr":
                sys.stderr.buffer.write(out.stderr)
                sys.stderr.buffer.flush()
            elif which == "exit_code":
                code = out.exit_code
    finally:
        if saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
    if code:
        print(f"command terminated with exit code {code}", file=sys.stderr)
    return code


VERB = verb.Verb("exec", "Execute a command in a container", arguments, run_exec, rank=140, after_dashes="cmd")
