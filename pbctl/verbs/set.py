"""set image|env|resources: change the containers of a pod template (Deployments, ReplicaSets,
ReplicationControllers, DaemonSets, StatefulSets, Jobs, CronJobs) or of a Pod (image only), as kubectl does.

Each object is read, changed as a dict and written back with its resourceVersion (a concurrent writer makes
it a Conflict, retried on the new version); an unchanged object is not written and not reported.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
from collections.abc import Callable
from typing import Any

from pbctl import verb
from pbctl.common import CliError, Ctx, dump, err, out, parse_targets, ref, report_object_error
from pybernetes import errors
from pybernetes.api import codec, kinds
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import meta_of

TEMPLATED = ("deployments", "replicasets", "replicationcontrollers", "daemonsets", "statefulsets", "jobs")
DONE = {"image": "image updated", "env": "env updated", "resources": "resource requirements updated"}
Change = Callable[[dict[str, Any], str], bool]  # (container, kind of list) -> changed


def arguments(p: argparse.ArgumentParser) -> None:
    sub = verb.subcommands(p, "set_cmd")
    for name, help_ in (("image", "Update the image of a pod template"),
                        ("env", "Update environment variables on a pod template"),
                        ("resources", "Update resource requests/limits on objects with pod templates")):
        sp = verb.subcommand(sub, name, help_)
        sp.add_argument("args", nargs="*", metavar="TYPE/NAME [...] " + ("CONTAINER=IMAGE..." if name == "image"
                                                                          else "KEY=VALUE|KEY-..." * (name == "env")))
        sp.add_argument("-l", "--selector", default="")
        sp.add_argument("--all", action="store_true")
        if name != "image":
            sp.add_argument("-c", "--containers", default="*", help="the containers to change (a glob)")
        if name == "env":
            sp.add_argument("-e", "--env", action="append", default=[], help="KEY=VALUE (repeatable)")
            sp.add_argument("--from", dest="from_", default="", help="configmap/NAME or secret/NAME: all its keys")
            sp.add_argument("--prefix", default="", help="prefix for the names of the variables from --from")
            sp.add_argument("--list", action="store_true", help="print the environment instead of changing it")
        if name == "resources":
            sp.add_argument("--limits", default="", help="e.g. cpu=200m,memory=512Mi")
            sp.add_argument("--requests", default="", help="e.g. cpu=100m,memory=256Mi")
        sp.add_argument("--dry-run", nargs="?", const="client", default="none", choices=("none", "client", "server"))
        sp.add_argument("-o", "--output", default="", choices=("", "yaml", "json", "name"))


def pod_spec(info: kinds.ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj.setdefault("spec", {})
    if info.plural == "pods":
        return spec
    if info.plural == "cronjobs":
        spec = spec.setdefault("jobTemplate", {}).setdefault("spec", {})
    template: dict[str, Any] = spec.setdefault("template", {}).setdefault("spec", {})
    return template


def _split(items: list[str], is_change: Callable[[str], bool]) -> tuple[list[str], list[str]]:
    """kubectl's argument split: the resources first, then the changes (`c=img`, `K=V`, `K-`)."""
    targets = [a for a in items if not is_change(a)]
    return targets, [a for a in items if is_change(a)]


# resource.ParseQuantity's shape, checked before anything is sent, as kubectl does.
QUANTITY = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


def _quantities(text: str, flag: str) -> dict[str, str]:
    out_: dict[str, str] = {}
    for part in (p for p in text.split(",") if p):
        k, sep, v = part.partition("=")
        if not sep or not k or not v:
            raise CliError(f"invalid {flag} value {part!r}: expected NAME=QUANTITY")
        if not re.match(QUANTITY, v):
            raise CliError(f"quantities must match the regular expression '{QUANTITY}'")
        out_[k] = v
    return out_


async def _env_from(ctx: Ctx, spec: str, prefix: str) -> list[dict[str, Any]]:
    kind, _, name = spec.partition("/")
    ref_key = {"configmap": "configMapKeyRef", "cm": "configMapKeyRef", "secret": "secretKeyRef"}.get(kind.lower())
    if ref_key is None or not name:
        raise CliError(f"--from must be configmap/NAME or secret/NAME, not {spec!r}")
    if ref_key == "configMapKeyRef":
        keys = sorted((await ctx.client.get(core.ConfigMap, name, namespace=ctx.namespace)).data)
    else:
        keys = sorted((await ctx.client.get(core.Secret, name, namespace=ctx.namespace)).data)
    return [{"name": prefix + re.sub(r"[^A-Za-z0-9_]", "_", k).upper(),
             "valueFrom": {ref_key: {"name": name, "key": k}}} for k in keys]


async def _change(ctx: Ctx, args: argparse.Namespace, changes: list[str]) -> Change:
    """The edit one container gets, from the subcommand's arguments."""
    if args.set_cmd == "image":
        images = dict(c.split("=", 1) for c in changes)
        if not images:
            raise CliError("at least one image update is required")

        def image(c: dict[str, Any], _: str) -> bool:
            new = images.get(c.get("name", ""), images.get("*"))
            if new is None or c.get("image") == new:
                return False
            c["image"] = new
            return True
        return image
    if args.set_cmd == "resources":
        limits, requests = _quantities(args.limits, "--limits"), _quantities(args.requests, "--requests")
        if not limits and not requests:
            raise CliError("you must specify an update to requests or limits (in the form of --requests/--limits)")

        def resources(c: dict[str, Any], _: str) -> bool:
            res = c.setdefault("resources", {})
            before = repr(res)
            for key, values in (("limits", limits), ("requests", requests)):
                if values:
                    res.setdefault(key, {}).update(values)
            return repr(res) != before
        return resources
    env_args = [*args.env, *changes]
    sets = [dict(zip(("name", "value"), e.split("=", 1), strict=True)) for e in env_args if "=" in e]
    sets += await _env_from(ctx, args.from_, args.prefix) if args.from_ else []
    removes = {e[:-1] for e in env_args if e.endswith("-") and "=" not in e}
    if not sets and not removes:
        raise CliError("at least one environment variable must be provided")

    def env(c: dict[str, Any], _: str) -> bool:
        old = list(c.get("env", []))
        new = [e for e in old if e.get("name") not in removes]
        for s in sets:
            for i, e in enumerate(new):
                if e.get("name") == s["name"]:
                    new[i] = s
                    break
            else:
                new.append(s)
        if new == old:
            return False
        c["env"] = new
        return True
    return env


def _containers(info: kinds.ResourceInfo, obj: dict[str, Any], pattern: str, image: bool) -> list[dict[str, Any]]:
    spec = pod_spec(info, obj)
    cs: list[dict[str, Any]] = [*spec.get("initContainers", []), *spec.get("containers", [])]
    return cs if image else [c for c in cs if fnmatch.fnmatchcase(c.get("name", ""), pattern)]


def _ref_string(src: dict[str, Any]) -> str:
    """kubectl's envutil.GetEnvVarRefString."""
    if "configMapKeyRef" in src:
        return f"configmap {src['configMapKeyRef'].get('name', '')}, key {src['configMapKeyRef'].get('key', '')}"
    if "secretKeyRef" in src:
        return f"secret {src['secretKeyRef'].get('name', '')}, key {src['secretKeyRef'].get('key', '')}"
    if "fieldRef" in src:
        return f"field path {src['fieldRef'].get('fieldPath', '')}"
    if "resourceFieldRef" in src:
        r = src["resourceFieldRef"]
        prefix = f"{r['containerName']}/" if r.get("containerName") else ""
        return f"resource {prefix}{r.get('resource', '')}"
    return "invalid valueFrom"


def _list_env(info: kinds.ResourceInfo, obj: dict[str, Any], pattern: str) -> None:
    for c in _containers(info, obj, pattern, False):
        out(f"# {info.kind} {obj['metadata']['name']}, container {c.get('name', '')}")
        for e in c.get("env", []):
            if "valueFrom" not in e:
                out(f"{e['name']}={e.get('value', '')}")
            else:
                out(f"# {e['name']} from {_ref_string(e['valueFrom'])}")


async def _set_one(ctx: Ctx, args: argparse.Namespace, info: kinds.ResourceInfo, ns: str, name: str,
                   change: Change) -> bool:
    """Change one object; False when nothing needed changing. Retries a Conflict on the new version."""
    for attempt in range(3):
        live = await ctx.client.get(info.cls, name, namespace=ns)
        data = codec.to_dict(live)
        containers = _containers(info, data, getattr(args, "containers", "*"), args.set_cmd == "image")
        if args.set_cmd == "image":
            wanted = {c.split("=", 1)[0] for c in args.changes} - {"*"}
            missing = wanted - {c.get("name") for c in containers}
            if missing:
                raise CliError(f'unable to find container named "{sorted(missing)[0]}"')
        elif not containers:
            raise CliError(f"unable to find container named {args.containers}")
        if not [c for c in containers if change(c, args.set_cmd)]:
            return False
        try:
            updated = await ctx.client.update(codec.from_dict(data, info.cls), dry_run=args.dry_run != "none",
                                              field_manager="kubectl-set")
        except errors.Conflict:
            if attempt == 2:
                raise
            continue
        if args.output in ("yaml", "json"):
            out(dump(codec.to_dict(updated), args.output))
        elif args.output == "name":
            out(ref(info, name))
        else:
            suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(args.dry_run, "")
            out(f"{ref(info, name)} {DONE[args.set_cmd]}{suffix}")
        return True
    return False


async def run_set(ctx: Ctx, args: argparse.Namespace) -> int:
    env_list = args.set_cmd == "env" and args.list
    targets_, args.changes = _split(list(args.args), lambda a: "=" in a or (args.set_cmd == "env" and
                                                                              a.endswith("-") and "/" not in a))
    parsed = parse_targets(targets_)
    if not parsed:
        raise CliError("one or more resources must be specified as <resource> <name> or <resource>/<name>")
    change = None if env_list else await _change(ctx, args, args.changes)
    failed = False
    for info, names in parsed:
        if info.plural not in (*TEMPLATED, "cronjobs") and not (info.plural == "pods" and args.set_cmd != "resources"):
            err(f"error: {info.plural}/{','.join(names)} has no pod template to change")
            failed = True
            continue
        if not names:
            if not (args.selector or args.all):
                raise CliError("resource(s) were provided, but no name was specified")
            res = await ctx.client.list_all(info.cls, namespace=ctx.ns(info), label_selector=args.selector)
            names = [meta_of(o).name for o in res.items]
        for name in names:
            try:
                if change is None:
                    _list_env(info, codec.to_dict(await ctx.client.get(info.cls, name, namespace=ctx.ns(info))),
                              args.containers)
                else:
                    await _set_one(ctx, args, info, ctx.ns(info), name, change)
            except errors.ApiError as e:
                report_object_error(e)
                failed = True
    return 1 if failed else 0


VERB = verb.Verb("set", "Set specific features on objects", arguments, run_set, rank=27)
