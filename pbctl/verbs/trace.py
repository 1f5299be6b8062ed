"""trace: one timeline of an object and its descendants (Deployment -> ReplicaSets -> Pods), across components.

Reads the objects and their Events from the apiserver and orders creation times, controller, scheduler and
kubelet events, pod condition transitions and container starts (pbctl.timeline). The trace ID is derived
from the root's uid and shared by every descendant found through ownerReferences.
"""

from __future__ import annotations

import argparse
import json

from google.protobuf.message import Message

from pbctl import verb
from pbctl.common import CliError, Ctx, dump, out, resolve_type
from pbctl.printers import render_table
from pbctl.timeline import Timeline, assemble, rows
from pybernetes.api import kinds
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core

# What each traceable kind can own, so a trace lists only what it needs.
OWNED: dict[str, tuple[type[Message], ...]] = {
    "Deployment": (apps.ReplicaSet, core.Pod),
    "ReplicaSet": (core.Pod,),
    "ReplicationController": (core.Pod,),
    "StatefulSet": (core.Pod,),
    "DaemonSet": (core.Pod,),
    "Job": (core.Pod,),
    "Pod": (),
}


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("resources", nargs="*", metavar="TYPE/NAME | TYPE NAME")
    p.add_argument("-o", "--output", default="", help="json|yaml")
    p.add_argument("--no-headers", action="store_true")


def parse_target(args: list[str]) -> tuple[kinds.ResourceInfo, str]:
    if len(args) == 1 and "/" in args[0]:
        kind, _, name = args[0].partition("/")
    elif len(args) == 2 and "/" not in args[0]:
        kind, name = args
    else:
        raise CliError("specify one object: TYPE/NAME or TYPE NAME (e.g. deployment/web, rs/web-7d9f, pod/web-x)")
    if not kind or not name:
        raise CliError("specify one object: TYPE/NAME or TYPE NAME")
    return resolve_type(kind), name


async def build(ctx: Ctx, info: kinds.ResourceInfo, name: str) -> Timeline:
    ns = ctx.ns(info)
    root = await ctx.client.get(info.cls, name, namespace=ns)
    candidates: list[Message] = []
    for cls in OWNED.get(info.kind, ()):
        candidates.extend((await ctx.client.list_all(cls, namespace=ns)).items)
    events = (await ctx.client.list_all(core.Event, namespace=ns or "default")).items
    return assemble(root, candidates, events)


def render(tl: Timeline, *, no_headers: bool = False) -> str:
    head = "" if no_headers else (f"TRACE {tl.trace_id}  {tl.root}  "
                                  f"({len(tl.objects)} object{'s' if len(tl.objects) != 1 else ''})\n")
    table = render_table(["OFFSET", "COMPONENT", "OBJECT", "WHAT"], rows(tl), no_headers=no_headers)
    note = "" if no_headers or all(e.precise for e in tl.entries) else \
        "(~ whole-second timestamp, placed by causal order within its second)\n"
    return head + table + note


async def run_trace(ctx: Ctx, args: argparse.Namespace) -> int:
    """pbctl trace deployment/NAME | rs/NAME | pod/NAME [-o json|yaml] [--no-headers]."""
    info, name = parse_target(list(args.resources))
    tl = await build(ctx, info, name)
    if args.output in ("json", "yaml"):
        text = json.dumps(tl.to_dict(), indent=2) if args.output == "json" else dump(tl.to_dict(), "yaml")
        out(text.rstrip("\n"))
        return 0
    if args.output:
        raise CliError(f"unable to match a printer suitable for the output format {args.output!r}, "
                       "allowed formats are: json,yaml")
    out(render(tl, no_headers=args.no_headers).rstrip("\n"))
    return 0


VERB = verb.Verb("trace", "Show one timeline of what happened to an object and its descendants", arguments, run_trace,
                 rank=160)
