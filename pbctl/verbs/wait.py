"""wait: block until objects meet a condition (`--for=condition=Ready[=true]`), a JSONPath value
(`--for=jsonpath={.status.phase}=Running`, or only its existence), or are deleted (`--for=delete`).

Each object is read once and then followed through a watch from that version (re-read when the watch
ends or expires), so a change is seen as it happens; all objects share one --timeout (30s by default).
Messages and exit codes as kubectl's: `pod/x condition met` (for a deletion too), `error: timed out waiting for
the condition on pods/x` (exit 1); a missing object is NotFound, except for --for=delete: nothing to wait for,
nothing printed, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from pbctl import verb
from pbctl.common import CliError, Ctx, err, format_api_error, get_path, out, parse_duration, parse_targets, ref
from pybernetes import errors
from pybernetes.api import codec, kinds
from pybernetes.api.objects import meta_of

Check = Callable[[dict[str, Any]], bool]


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("resources", nargs="*", metavar="TYPE/NAME | TYPE NAME...")
    p.add_argument("--for", dest="for_", default="",
                   help="delete, condition=NAME[=VALUE], create, or jsonpath=EXPR[=VALUE]")
    p.add_argument("--timeout", default="30s", help="give up after this long (0: check once; negative: a week)")
    p.add_argument("-l", "--selector", default="")
    p.add_argument("--field-selector", default="")
    p.add_argument("--all", action="store_true", help="every object of the type(s) in the namespace")


def condition_check(spec: str) -> Check:
    """`Ready` or `Ready=false`: a status condition of that type (any case) with that status (True by default)."""
    ctype, _, want = spec.partition("=")
    want = want or "True"

    def check(obj: dict[str, Any]) -> bool:
        for c in (obj.get("status") or {}).get("conditions") or []:
            if str(c.get("type", "")).lower() == ctype.lower():
                return str(c.get("status", "")).lower() == want.lower()
        return False
    return check


def jsonpath_check(spec: str) -> Check:
    """`{.status.phase}=Running` (value compared as text) or `{.status.podIP}` (present and not empty)."""
    path, sep, want = spec.partition("=")
    if not path.strip("{}").startswith("."):
        raise CliError(f"unrecognized JSONPath expression: {spec}")

    def check(obj: dict[str, Any]) -> bool:
        v = get_path(obj, path)
        if not sep:
            return v not in (None, "", [], {})
        if isinstance(v, bool):
            v = str(v).lower()
        return v is not None and not isinstance(v, dict | list) and str(v) == want
    return check


def parse_for(text: str) -> Check | None:
    """The check --for asks for; None for --for=delete."""
    if text.lower() == "delete":
        return None
    if text.lower() == "create":
        return lambda _obj: True
    kind, sep, rest = text.partition("=")
    if sep and rest and kind.lower() == "condition":
        return condition_check(rest)
    if sep and rest and kind.lower() == "jsonpath":
        return jsonpath_check(rest.strip("'"))
    raise CliError(f"unrecognized condition: {text!r}")


async def _until(ctx: Ctx, info: kinds.ResourceInfo, ns: str, name: str, check: Check | None) -> bool:
    """Return once `check` holds for the object (None: once it is gone); the caller bounds the time.
    False when waiting for a deletion of an object that was already gone (kubectl then prints nothing)."""
    selector = f"metadata.name={name}"
    first = True
    while True:
        found = await ctx.client.list(info.cls, namespace=ns, field_selector=selector)
        if not found.items:
            if check is None:
                return not first
            raise errors.NotFound(f'{info.plural} "{name}" not found', reason="NotFound")
        first = False
        if check is not None and check(codec.to_dict(found.items[0])):
            return True
        try:
            async for ev in ctx.client.watch(info.cls, namespace=ns, field_selector=selector,
                                             resource_version=found.resource_version):
                if ev.type == "DELETED" and check is None:
                    return True
                if ev.type == "DELETED":
                    raise errors.NotFound(f'{info.plural} "{name}" not found', reason="NotFound")
                if ev.type in ("ADDED", "MODIFIED") and check is not None and check(codec.to_dict(ev.object)):
                    return True
        except errors.Expired:
            pass  # re-read and watch again


async def _targets(ctx: Ctx, args: argparse.Namespace, deleting: bool) -> list[tuple[kinds.ResourceInfo, str, str]]:
    parsed = parse_targets(list(args.resources))
    if not parsed:
        raise CliError("resource(s) were provided, but no name was specified" if args.resources else
                       "at least one resource must be specified to use a selector" if args.selector else
                       "you must specify a resource type")
    targets: list[tuple[kinds.ResourceInfo, str, str]] = []
    for info, names in parsed:
        if names:
            targets.extend((info, ctx.ns(info), n) for n in names)
        elif args.selector or args.all or args.field_selector:
            res = await ctx.client.list_all(info.cls, namespace=ctx.ns(info), label_selector=args.selector,
                                            field_selector=args.field_selector)
            targets.extend((info, meta_of(o).namespace, meta_of(o).name) for o in res.items)
        else:
            raise CliError("resource(s) were provided, but no name was specified")
    if not targets and not deleting:
        raise CliError("no matching resources found")
    return targets


async def run_wait(ctx: Ctx, args: argparse.Namespace) -> int:
    if not args.for_:
        raise CliError("--for must be specified")
    check = parse_for(args.for_)
    timeout = parse_duration(args.timeout)
    if timeout < 0:
        timeout = 7 * 24 * 3600.0
    deadline = time.monotonic() + timeout
    failed = False
    for info, ns, name in await _targets(ctx, args, check is None):
        try:
            seen = await asyncio.wait_for(_until(ctx, info, ns, name, check),
                                          max(deadline - time.monotonic(), 0.001))
        except TimeoutError:
            err(f"error: timed out waiting for the condition on {info.plural}/{name}")
            failed = True
            continue
        except errors.ApiError as e:
            if isinstance(e, errors.Unavailable):
                raise
            err(format_api_error(e))
            failed = True
            continue
        if seen:
            out(f"{ref(info, name)} condition met")  # kubectl's wording for every --for, delete included
    return 1 if failed else 0


VERB = verb.Verb("wait", "Experimental: Wait for a specific condition on one or many resources", arguments,
                 run_wait, rank=97)
