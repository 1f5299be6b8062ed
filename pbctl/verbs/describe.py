"""describe: kubectl's human-readable report of each object (pbctl.describers), ending with its Events."""

from __future__ import annotations

import argparse

from google.protobuf.message import Message

from pbctl import verb
from pbctl.common import CliError, Ctx, err, format_api_error, now, out, parse_targets
from pbctl.describers.batch import describe_cronjob, describe_job
from pbctl.describers.generic import describe_generic
from pbctl.describers.node import describe_namespace, describe_node
from pbctl.describers.pod import describe_pod
from pbctl.describers.service import describe_service
from pbctl.describers.sets import describe_daemonset, describe_statefulset
from pbctl.describers.workloads import describe_deployment, describe_replicaset
from pbctl.describers.writer import Writer, describe_events, fetch_events
from pybernetes import errors, flags
from pybernetes.api import kinds
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.batch.v1 import batch_pb2 as batch
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.objects import meta_of


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("resources", nargs="*")
    p.add_argument("-l", "--selector", default="")
    p.add_argument("--show-events", type=flags.boolean, nargs="?", const=True, default=True)


async def describe_object(ctx: Ctx, info: kinds.ResourceInfo, obj: Message, *, show_events: bool = True
                          ) -> str:
    w = Writer()
    t = now()
    md = meta_of(obj)
    if isinstance(obj, core.Pod):
        describe_pod(w, obj, t)
    elif isinstance(obj, apps.Deployment):
        await describe_deployment(ctx, w, obj, t)
    elif isinstance(obj, apps.ReplicaSet | core.ReplicationController):
        pods = await ctx.client.list_all(core.Pod, namespace=md.namespace)
        owned = [p for p in pods.items if any(o.uid == md.uid for o in p.metadata.owner_references)]
        describe_replicaset(w, obj, owned)
    elif isinstance(obj, apps.DaemonSet | apps.StatefulSet):
        pods = await ctx.client.list_all(core.Pod, namespace=md.namespace)
        mine = [p for p in pods.items if any(o.uid == md.uid for o in p.metadata.owner_references)]
        if isinstance(obj, apps.DaemonSet):
            describe_daemonset(w, obj, mine)
        else:
            describe_statefulset(w, obj, mine)
    elif isinstance(obj, core.Service):
        try:
            ep: core.Endpoints | None = await ctx.client.get(core.Endpoints, md.name, namespace=md.namespace)
        except errors.NotFound:
            ep = None
        describe_service(w, obj, ep)
    elif isinstance(obj, core.Node):
        pods = await ctx.client.list_all(core.Pod, field_selector=f"spec.nodeName={md.name}")
        describe_node(w, obj, pods.items, t)
    elif isinstance(obj, core.Namespace):
        describe_namespace(w, obj)
    elif isinstance(obj, batch.Job):
        describe_job(w, obj)
    elif isinstance(obj, batch.CronJob):
        describe_cronjob(w, obj)
    else:
        describe_generic(w, info, obj)
    if show_events and info.plural != "events":
        describe_events(w, await fetch_events(ctx, info, obj), t)
    return w.text()


async def run_describe(ctx: Ctx, args: argparse.Namespace) -> int:
    parsed = parse_targets(list(args.resources))
    if not parsed:
        raise CliError("You must specify the type of resource to describe. Use \"pbctl api-resources\" for a "
                       "complete list of supported resources.")
    blocks: list[str] = []
    failed = False
    for info, names in parsed:
        objs: list[Message] = []
        if names:
            for n in names:
                try:
                    objs.append(await ctx.client.get(info.cls, n, namespace=ctx.ns(info)))
                except errors.NotFound as e:
                    err(format_api_error(e))
                    failed = True
        else:
            ns = "" if args.all_namespaces else ctx.ns(info)
            res = await ctx.client.list_all(info.cls, namespace=ns, label_selector=args.selector or "")
            objs = list(res.items)
            if not objs and not blocks:
                err("No resources found" if args.all_namespaces or not info.namespaced
                    else f"No resources found in {ctx.namespace} namespace.")
        for o in objs:
            blocks.append(await describe_object(ctx, info, o, show_events=args.show_events))
    if blocks:
        out("\n\n".join(b.rstrip("\n") for b in blocks))
    return 1 if failed else 0


VERB = verb.Verb("describe", "Show details of a specific resource or group of resources", arguments, run_describe,
                 rank=40)
