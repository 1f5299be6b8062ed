"""get: tables, -o wide|yaml|json|name|jsonpath=..., selectors, --sort-by, -w/--watch."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from google.protobuf.message import Message

from pbctl import jsonpath, printers, verb
from pbctl.common import (
    CliError,
    Ctx,
    dump,
    err,
    format_api_error,
    get_path,
    list_dict,
    now,
    out,
    parse_duration,
    parse_targets,
    ref,
)
from pybernetes import errors
from pybernetes.api import codec, kinds
from pybernetes.api.objects import meta_of

Groups = list[tuple[kinds.ResourceInfo, list[Message]]]


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("resources", nargs="*", metavar="TYPE[,TYPE] [NAME...] | TYPE/NAME")
    p.add_argument("-o", "--output", default="", help="wide|yaml|json|name|jsonpath=EXPR")
    p.add_argument("-w", "--watch", action="store_true", help="after listing, watch for changes")
    p.add_argument("--watch-only", action="store_true", help="watch for changes without listing first")
    p.add_argument("--output-watch-events", action="store_true", help="print the event type in watch mode")
    p.add_argument("-l", "--selector", default="", help="label selector")
    p.add_argument("--field-selector", default="", help="field selector")
    p.add_argument("--show-labels", action="store_true")
    p.add_argument("--no-headers", action="store_true")
    p.add_argument("--sort-by", default="", help="JSONPath, e.g. .metadata.name")
    p.add_argument("--request-timeout", default="", help="stop watching after this long (e.g. 30s)")


def _sort_key(v: Any) -> tuple[int, Any]:
    if v is None:
        return (2, "")
    if isinstance(v, bool):
        return (0, int(v))
    if isinstance(v, int | float):
        return (0, v)
    return (1, str(v))


def sort_objects(objs: list[Message], path: str) -> list[Message]:
    return sorted(objs, key=lambda o: _sort_key(get_path(codec.to_dict(o), path)))


def jsonpath_output(data: Any, expr: str) -> str:
    return jsonpath.render(data, expr)


async def fetch(ctx: Ctx, args: argparse.Namespace) -> tuple[Groups, list[str], bool]:
    """(objects per type, error lines, whether the request named exactly one object)."""
    targets = parse_targets(list(args.resources))
    if not targets:
        raise CliError('You must specify the type of resource to get. Use "pbctl api-resources" for a complete '
                       "list of supported resources.")
    groups: Groups = []
    problems: list[str] = []
    named = sum(len(n) for _, n in targets)
    for info, names in targets:
        objs: list[Message] = []
        if names:
            if args.all_namespaces and info.namespaced:
                raise CliError("a resource cannot be retrieved by name across all namespaces")
            for name in names:
                try:
                    objs.append(await ctx.client.get(info.cls, name, namespace=ctx.ns(info)))
                except errors.NotFound as e:
                    problems.append(format_api_error(e))
        else:
            ns = "" if args.all_namespaces else ctx.ns(info)
            res = await ctx.client.list_all(info.cls, namespace=ns, label_selector=args.selector or "",
                                            field_selector=args.field_selector or "")
            objs = list(res.items)
        if args.sort_by:
            objs = sort_objects(objs, args.sort_by)
        groups.append((info, objs))
    return groups, problems, named == 1 and len(targets) == 1


def no_resources(ctx: Ctx, args: argparse.Namespace, groups: Groups) -> str:
    if args.all_namespaces or all(not i.namespaced for i, _ in groups):
        return "No resources found"
    return f"No resources found in {ctx.namespace} namespace."


def print_groups(ctx: Ctx, args: argparse.Namespace, groups: Groups, single: bool) -> None:
    fmt = args.output or ""
    objs = [o for _, os_ in groups for o in os_]
    if fmt in ("json", "yaml"):
        if single and len(objs) == 1:
            out(dump(codec.to_dict(objs[0]), fmt))
        elif objs or not single:
            out(dump(list_dict([codec.to_dict(o) for o in objs]), fmt))
        return
    if fmt.startswith("jsonpath="):
        expr = fmt[len("jsonpath="):]
        data = codec.to_dict(objs[0]) if single and len(objs) == 1 else list_dict([codec.to_dict(o) for o in objs])
        out(jsonpath_output(data, expr))
        return
    if fmt == "name":
        for info, os_ in groups:
            for o in os_:
                out(ref(info, meta_of(o).name))
        return
    if fmt not in ("", "wide"):
        raise CliError(f'unable to match a printer suitable for the output format "{fmt}", allowed formats are: '
                       "json,jsonpath,name,wide,yaml")
    with_kind = len(groups) > 1
    t = now()
    first = True
    for info, os_ in groups:
        if not os_:
            continue
        text = printers.table(info, os_, t, wide=fmt == "wide", show_labels=args.show_labels,
                              all_namespaces=args.all_namespaces, with_kind=with_kind, no_headers=args.no_headers)
        if not first:
            out()
        out(text.rstrip("\n"))
        first = False


async def run_get(ctx: Ctx, args: argparse.Namespace) -> int:
    if args.watch or args.watch_only:
        return await watch(ctx, args)
    groups, problems, single = await fetch(ctx, args)
    print_groups(ctx, args, groups, single)
    if not any(os_ for _, os_ in groups) and not problems and (args.output or "") in ("", "wide", "name"):
        err(no_resources(ctx, args, groups))
    for p in problems:
        err(p)
    return 1 if problems else 0


async def watch(ctx: Ctx, args: argparse.Namespace) -> int:
    """Print the current table, then one line per change, until interrupted (or --request-timeout)."""
    targets = parse_targets(list(args.resources))
    if len(targets) != 1:
        raise CliError("you may only specify a single resource type with --watch")
    info, names = targets[0]
    if len(names) > 1:
        raise CliError("watch is only supported on individual resources and resource collections, but "
                       f"{len(names)} resources were found")
    ns = "" if args.all_namespaces else ctx.ns(info)
    field_sel = args.field_selector or ""
    if names:
        field_sel = ",".join(x for x in (field_sel, f"metadata.name={names[0]}") if x)
    fmt = args.output or ""
    wide = fmt == "wide"
    header_done = args.no_headers

    def emit(obj: Message, event: str = "") -> None:
        nonlocal header_done
        if fmt in ("json", "yaml"):
            out(dump(codec.to_dict(obj), fmt) + ("\n---" if fmt == "yaml" else ""))
            return
        if fmt == "name":
            out(ref(info, meta_of(obj).name))
            return
        headers = printers.headers_for(info, wide=wide, show_labels=args.show_labels,
                                       all_namespaces=args.all_namespaces)
        row = printers.row_for(info, obj, now(), wide=wide, show_labels=args.show_labels,
                               all_namespaces=args.all_namespaces)
        if args.output_watch_events:
            headers, row = ["EVENT", *headers], [event, *row]
        if not header_done:
            out(printers.render_table(headers, [row]).rstrip("\n"))
            header_done = True
        else:
            out(printers.render_table(headers, [row], no_headers=True).rstrip("\n"))

    async def loop() -> None:
        rv = ""
        while True:
            if not rv:
                res = await ctx.client.list_all(info.cls, namespace=ns, label_selector=args.selector or "",
                                                field_selector=field_sel)
                rv = res.resource_version
                if not args.watch_only:
                    for o in sort_objects(list(res.items), args.sort_by) if args.sort_by else res.items:
                        emit(o, "ADDED")
            try:
                async for ev in ctx.client.watch(info.cls, namespace=ns, label_selector=args.selector or "",
                                                 field_selector=field_sel, resource_version=rv):
                    rv = meta_of(ev.object).resource_version or rv
                    if ev.type in ("ADDED", "MODIFIED", "DELETED"):
                        emit(ev.object, ev.type)
            except errors.Expired:
                rv = ""
                continue
            except errors.Unavailable:
                await asyncio.sleep(1)
                continue

    timeout = parse_duration(args.request_timeout) if args.request_timeout else None
    try:
        await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        pass
    return 0


VERB = verb.Verb("get", "Display one or many resources", arguments, run_get, rank=30)
