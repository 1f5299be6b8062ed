"""api-resources: the kinds the server serves (discovery), filtered by scope and group."""

from __future__ import annotations

import argparse

from pbctl import printers, verb
from pbctl.common import Ctx, out


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--namespaced", choices=("true", "false"), default=None)
    p.add_argument("--api-group", default=None)
    p.add_argument("-o", "--output", choices=("wide", "name"), default="")
    p.add_argument("--no-headers", action="store_true")


async def run_api_resources(ctx: Ctx, args: argparse.Namespace) -> int:
    disc = await ctx.client.discovery()
    rows = []
    resources = [r for r in disc.resources if "/" not in r.name]
    if args.namespaced is not None:
        resources = [r for r in resources if r.namespaced == (args.namespaced == "true")]
    if args.api_group is not None:
        resources = [r for r in resources if r.group == args.api_group]
    resources.sort(key=lambda r: (r.group, r.name))
    for r in resources:
        api_version = f"{r.group}/{r.version}" if r.group else r.version
        if args.output == "name":
            out(f"{r.name}.{r.group}" if r.group else r.name)
            continue
        row = [r.name, ",".join(r.short_names), api_version, "true" if r.namespaced else "false", r.kind]
        if args.output == "wide":
            row += [f"[{' '.join(r.verbs)}]", ",".join(r.categories)]
        rows.append(row)
    if args.output == "name":
        return 0
    headers = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    if args.output == "wide":
        headers += ["VERBS", "CATEGORIES"]
    out(printers.render_table(headers, rows, no_headers=args.no_headers).rstrip("\n"))
    return 0


VERB = verb.Verb("api-resources", "Print the supported API resources on the server", arguments, run_api_resources,
                 rank=110)
