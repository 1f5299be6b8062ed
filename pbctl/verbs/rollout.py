"""rollout status|history|undo|restart|pause|resume for deployments (status and restart also for daemon sets
and stateful sets), with kubectl's messages."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
from typing import Any

from pbctl import verb
from pbctl.common import CHANGE_CAUSE, RESTARTED_AT, REVISION, CliError, Ctx, out, parse_duration, parse_targets, ref
from pbctl.printers import render_table
from pybernetes import errors, flags
from pybernetes.api import codec, kinds, objects
from pybernetes.api.apps.v1 import apps_pb2 as apps

TIMED_OUT_REASON = "ProgressDeadlineExceeded"


SUBCOMMANDS = (("status", "Show the status of the rollout"), ("history", "View rollout history"),
               ("undo", "Undo a previous rollout"), ("restart", "Restart a resource"),
               ("pause", "Mark the provided resource as paused"), ("resume", "Resume a paused resource"))


def arguments(p: argparse.ArgumentParser) -> None:
    sub = verb.subcommands(p, "rollout_cmd")
    for name, help_ in SUBCOMMANDS:
        rp = verb.subcommand(sub, name, help_)
        rp.add_argument("resources", nargs="*")
        verb.dry_run(rp)
        if name == "status":
            rp.add_argument("-w", "--watch", type=flags.boolean, nargs="?", const=True, default=True)
            rp.add_argument("--timeout", default="", help="give up after this long (e.g. 5m; 0: forever)")
            rp.add_argument("--revision", type=int, default=0)
        elif name == "history":
            rp.add_argument("--revision", type=int, default=0)
        elif name == "undo":
            rp.add_argument("--to-revision", type=int, default=0)


# The kinds each subcommand takes (kubectl: status and restart for all three, the rest for deployments).
_ALL_WORKLOADS = ("deployments", "daemonsets", "statefulsets")
_KINDS_OF = {"status": _ALL_WORKLOADS, "restart": _ALL_WORKLOADS}


def _targets(args: argparse.Namespace) -> list[tuple[kinds.ResourceInfo, str]]:
    parsed = parse_targets(list(args.resources))
    if not parsed:
        raise CliError("required resource not specified")
    targets: list[tuple[kinds.ResourceInfo, str]] = []
    for info, ns in parsed:
        if info.plural not in _KINDS_OF.get(args.rollout_cmd, ("deployments",)):
            raise CliError(f"no status viewer has been implemented for {info.kind}"
                           if args.rollout_cmd == "status" else f"{info.plural} are not supported by rollout")
        if not ns:
            raise CliError("resource(s) were provided, but no name was specified")
        targets.extend((info, n) for n in ns)
    return targets


def status_message(d: apps.Deployment) -> tuple[str, bool]:
    """kubectl's DeploymentStatusViewer: (message, done); raises CliError past the progress deadline."""
    name = d.metadata.name
    st = d.status
    if d.metadata.generation <= st.observed_generation:
        for c in st.conditions:
            if c.type == "Progressing" and c.reason == TIMED_OUT_REASON:
                raise CliError(f'deployment "{name}" exceeded its progress deadline')
        replicas = objects.replicas(d)
        if st.updated_replicas < replicas:
            return (f'Waiting for deployment "{name}" rollout to finish: {st.updated_replicas} out of {replicas} '
                    "new replicas have been updated..."), False
        if st.replicas > st.updated_replicas:
            return (f'Waiting for deployment "{name}" rollout to finish: {st.replicas - st.updated_replicas} old '
                    "replicas are pending termination..."), False
        if st.available_replicas < st.updated_replicas:
            return (f'Waiting for deployment "{name}" rollout to finish: {st.available_replicas} of '
                    f"{st.updated_replicas} updated replicas are available..."), False
        return f'deployment "{name}" successfully rolled out', True
    return "Waiting for deployment spec update to be observed...", False


def daemonset_status_message(ds: apps.DaemonSet) -> tuple[str, bool]:
    """kubectl's DaemonSetStatusViewer."""
    if ds.spec.update_strategy.type != "RollingUpdate":
        raise CliError("rollout status is only available for RollingUpdate strategy type")
    name, st = ds.metadata.name, ds.status
    if ds.metadata.generation <= st.observed_generation:
        if st.updated_number_scheduled < st.desired_number_scheduled:
            return (f'Waiting for daemon set "{name}" rollout to finish: {st.updated_number_scheduled} out of '
                    f"{st.desired_number_scheduled} new pods have been updated..."), False
        if st.number_available < st.desired_number_scheduled:
            return (f'Waiting for daemon set "{name}" rollout to finish: {st.number_available} of '
                    f"{st.desired_number_scheduled} updated pods are available..."), False
        return f'daemon set "{name}" successfully rolled out', True
    return "Waiting for daemon set spec update to be observed...", False


def statefulset_status_message(ss: apps.StatefulSet) -> tuple[str, bool]:
    """kubectl's StatefulSetStatusViewer (the apiserver always defaults a partition, so its message)."""
    strategy, st = ss.spec.update_strategy, ss.status
    if strategy.type != "RollingUpdate":
        raise CliError("rollout status is only available for RollingUpdate strategy type")
    if st.observed_generation == 0 or ss.metadata.generation > st.observed_generation:
        return "Waiting for statefulset spec update to be observed...", False
    replicas = objects.replicas(ss)
    if st.ready_replicas < replicas:
        return f"Waiting for {replicas - st.ready_replicas} pods to be ready...", False
    if strategy.HasField("rolling_update"):
        partition = strategy.rolling_update.partition
        if strategy.rolling_update.HasField("partition") and st.updated_replicas < replicas - partition:
            return (f"Waiting for partitioned roll out to finish: {st.updated_replicas} out of "
                    f"{replicas - partition} new pods have been updated..."), False
        return f"partitioned roll out complete: {st.updated_replicas} new pods have been updated...", True
    if st.update_revision != st.current_revision:
        return (f"waiting for statefulset rolling update to complete {st.updated_replicas} pods at revision "
                f"{st.update_revision}..."), False
    return (f"statefulset rolling update complete {st.current_replicas} pods at revision "
            f"{st.current_revision}..."), True


async def status(ctx: Ctx, args: argparse.Namespace, info: kinds.ResourceInfo, name: str) -> int:
    timeout = parse_duration(args.timeout) if args.timeout else 0.0
    deadline = time.monotonic() + timeout if timeout > 0 else None
    ns = ctx.namespace
    last = ""
    while True:
        obj = await ctx.client.get(info.cls, name, namespace=ns)
        if isinstance(obj, apps.DaemonSet):
            msg, done = daemonset_status_message(obj)
        elif isinstance(obj, apps.StatefulSet):
            msg, done = statefulset_status_message(obj)
        else:
            assert isinstance(obj, apps.Deployment)
            d = obj
            if args.revision:
                rs = await _owned_replicasets(ctx, d)
                current = max((_revision(r) for r in rs), default=0)
                if current != args.revision:
                    raise CliError(f"desired revision ({args.revision}) is different from the running revision "
                                   f"({current})")
            msg, done = status_message(d)
        if msg != last:
            out(msg)
            last = msg
        if done or not args.watch:
            return 0
        if deadline is not None and time.monotonic() > deadline:
            raise CliError("timed out waiting for the condition")
        await asyncio.sleep(0.5)


def _revision(rs: apps.ReplicaSet) -> int:
    try:
        return int(rs.metadata.annotations.get(REVISION, "0"))
    except ValueError:
        return 0


async def _owned_replicasets(ctx: Ctx, d: apps.Deployment) -> list[apps.ReplicaSet]:
    res = await ctx.client.list_all(apps.ReplicaSet, namespace=d.metadata.namespace)
    return [rs for rs in res.items
            if any(o.uid == d.metadata.uid and o.controller for o in rs.metadata.owner_references)]


def _template_dict(rs: apps.ReplicaSet) -> dict[str, Any]:
    t = codec.to_dict(rs.spec.template)
    labels = dict((t.get("metadata") or {}).get("labels") or {})
    labels.pop("pod-template-hash", None)
    md = dict(t.get("metadata") or {})
    if labels:
        md["labels"] = labels
    else:
        md.pop("labels", None)
    t["metadata"] = md
    return t


async def history(ctx: Ctx, args: argparse.Namespace, name: str) -> int:
    d = await ctx.client.get(apps.Deployment, name, namespace=ctx.namespace)
    rs_list = sorted(await _owned_replicasets(ctx, d), key=_revision)
    info = kinds.for_class(apps.Deployment)
    if args.revision:
        for rs in rs_list:
            if _revision(rs) == args.revision:
                out(f"{ref(info, name)} with revision #{args.revision}")
                out(codec.yaml_dump({"template": codec.to_dict(rs.spec.template)}).rstrip("\n"))
                return 0
        raise CliError("unable to find the specified revision")
    out(f"{ref(info, name)} ")
    rows = [[str(_revision(rs)), rs.metadata.annotations.get(CHANGE_CAUSE) or "<none>"] for rs in rs_list]
    out(render_table(["REVISION", "CHANGE-CAUSE"], rows).rstrip("\n"))
    return 0


async def undo(ctx: Ctx, args: argparse.Namespace, name: str) -> int:
    d = await ctx.client.get(apps.Deployment, name, namespace=ctx.namespace)
    info = kinds.for_class(apps.Deployment)
    if d.spec.paused:
        raise CliError(f'you cannot rollback a paused deployment; resume it first with \'pbctl rollout resume '
                       f'deployment/{name}\' and try again')
    rs_list = sorted(await _owned_replicasets(ctx, d), key=_revision)
    if not rs_list:
        raise CliError(f"no rollout history found for deployment \"{name}\"")
    target: apps.ReplicaSet | None = None
    if args.to_revision:
        target = next((r for r in rs_list if _revision(r) == args.to_revision), None)
        if target is None:
            raise CliError(f"unable to find specified revision {args.to_revision} in history")
    else:
        if len(rs_list) < 2:
            raise CliError("no revision found for deployment " f'"{name}"')
        target = rs_list[-2]
    tmpl = _template_dict(target)
    current = codec.to_dict(d.spec.template)
    if tmpl == current:
        out(f"{ref(info, name)} skipped rollback (current template already matches revision "
            f"{_revision(target)})")
        return 0
    ops: list[Any] = [{"op": "replace", "path": "/spec/template", "value": tmpl}]
    await ctx.client.patch(apps.Deployment, name, ops, namespace=ctx.namespace, patch_type="json",
                           dry_run=args.dry_run != "none")
    out(f"{ref(info, name)} rolled back")
    return 0


async def restart(ctx: Ctx, args: argparse.Namespace, info: kinds.ResourceInfo, name: str) -> int:
    d = await ctx.client.get(info.cls, name, namespace=ctx.namespace)
    if isinstance(d, apps.Deployment) and d.spec.paused:
        raise CliError(f"deployments \"{name}\" can't restart paused deployment (run rollout resume first)")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    await ctx.client.patch(info.cls, name, body, namespace=ctx.namespace, patch_type="strategic",
                           dry_run=args.dry_run != "none")
    out(f"{ref(info, name)} restarted")
    return 0


async def pause_resume(ctx: Ctx, args: argparse.Namespace, name: str, pause: bool) -> int:
    d = await ctx.client.get(apps.Deployment, name, namespace=ctx.namespace)
    info = kinds.for_class(apps.Deployment)
    if d.spec.paused == pause:
        raise CliError(f'deployments.apps "{name}" is {"already" if pause else "not"} paused')
    await ctx.client.patch(apps.Deployment, name, {"spec": {"paused": pause}}, namespace=ctx.namespace,
                           patch_type="merge", dry_run=args.dry_run != "none")
    out(f"{ref(info, name)} {'paused' if pause else 'resumed'}")
    return 0


async def run_rollout(ctx: Ctx, args: argparse.Namespace) -> int:
    rc = 0
    for info, name in _targets(args):
        try:
            if args.rollout_cmd == "status":
                rc |= await status(ctx, args, info, name)
            elif args.rollout_cmd == "history":
                rc |= await history(ctx, args, name)
            elif args.rollout_cmd == "undo":
                rc |= await undo(ctx, args, name)
            elif args.rollout_cmd == "restart":
                rc |= await restart(ctx, args, info, name)
            elif args.rollout_cmd in ("pause", "resume"):
                rc |= await pause_resume(ctx, args, name, args.rollout_cmd == "pause")
        except errors.NotFound:
            raise
    return rc


VERB = verb.Verb("rollout", "Manage the rollout of a resource", arguments, run_rollout, rank=100)
