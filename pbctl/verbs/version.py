"""version: the client's version, and the server's address and reachability."""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from pbctl import verb
from pbctl.common import VERSION, CliError, Ctx, out


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--client", action="store_true")
    p.add_argument("-o", "--output", choices=("json", "yaml"), default="")


async def run_version(ctx: Ctx, args: argparse.Namespace) -> int:
    if args.output in ("json", "yaml"):
        data: dict[str, Any] = {"clientVersion": {"gitVersion": VERSION}}
        if not args.client:
            data["serverAddress"] = ctx.server
        import json

        out(json.dumps(data, indent=2) if args.output == "json" else yaml.safe_dump(data).rstrip("\n"))
        return 0
    out(f"Client Version: {VERSION}")
    if not args.client:
        if ctx.config is None:
            raise CliError("no server configured: pass --server or --config")
        out(f"Server Address: {ctx.server}")
        await ctx.client.discovery()  # reachability: a refused connection is reported like kubectl's
        out("Server Status: reachable")
    return 0


VERB = verb.Verb("version", "Print the client and server version information", arguments, run_version, rank=170)
