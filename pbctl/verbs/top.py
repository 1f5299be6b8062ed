"""top: resource usage of nodes and pods, from each node's kubelet stats summary (through the apiserver).

Columns as kubectl's: nodes `NAME CPU(cores) CPU% MEMORY(bytes) MEMORY%` (percentages of the node's
allocatable), pods `NAME CPU(cores) MEMORY(bytes)` (`NAMESPACE` first with -A, `POD NAME ...` with
--containers). CPU in millicores, memory (working set) in Mi.
"""

from __future__ import annotations

import argparse
import asyncio

from pbctl import verb
from pbctl.common import CliError, Ctx, err, out
from pbctl.printers import render_table
from pybernetes import errors
from pybernetes.api import quantity
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.rpc.v1 import rpc_pb2 as pb
from pybernetes.api.selectors import parse_label_selector
from pybernetes.client.client import Client

MI = 1024 * 1024


def arguments(p: argparse.ArgumentParser) -> None:
    sub = verb.subcommands(p, "top_cmd")
    for name, aliases, help_ in (("nodes", ("node", "no"), "Display resource (CPU/memory) usage of nodes"),
                                 ("pods", ("pod", "po"), "Display resource (CPU/memory) usage of pods")):
        tp = verb.subcommand(sub, name, help_, aliases)
        tp.add_argument("name", nargs="?", default="")
        tp.add_argument("-l", "--selector", default="", help="label selector")
        tp.add_argument("--no-headers", action="store_true")
        if name == "pods":
            tp.add_argument("--containers", action="store_true", help="show the containers of each pod")


def cpu_text(nanocores: int) -> str:
    return f"{nanocores // 1_000_000}m"


def memory_text(n: int) -> str:
    return f"{n // MI}Mi"


def percent(used: int, total: int) -> str:
    return f"{int(used / total * 100)}%" if total > 0 else "<unknown>"


def node_rows(nodes: list[core.Node], stats: dict[str, pb.StatsSummary | None]) -> list[list[str]]:
    """kubectl's rows: nodes with metrics (in name order), then those without as <unknown>."""
    rows: list[list[str]] = []
    missing: list[list[str]] = []
    for n in sorted(nodes, key=lambda x: x.metadata.name):
        s = stats.get(n.metadata.name)
        if s is None or not s.HasField("node"):
            missing.append([n.metadata.name] + ["<unknown>"] * 4)
            continue
        alloc = n.status.allocatable
        cpu_alloc = quantity.parse(alloc["cpu"].string) * 1_000_000_000 if "cpu" in alloc else 0
        mem_alloc = quantity.value(alloc["memory"].string) if "memory" in alloc else 0
        cpu, mem = s.node.cpu.usage_nano_cores, s.node.memory.working_set_bytes
        rows.append([n.metadata.name, cpu_text(cpu), percent(cpu, int(cpu_alloc)), memory_text(mem),
                     percent(mem, mem_alloc)])
    return rows + missing


async def _stats(client: Client, node: str) -> pb.StatsSummary | None:
    try:
        return await client.node_stats(node)
    except errors.ApiError as e:
        err(f"warning: metrics not available for node {node}: {e.message}")
        return None


async def top_nodes(ctx: Ctx, args: argparse.Namespace) -> int:
    nodes = (await ctx.client.list(core.Node, label_selector=args.selector)).items
    if args.name:
        nodes = [n for n in nodes if n.metadata.name == args.name]
        if not nodes:
            raise errors.NotFound(f'nodes "{args.name}" not found', kind="nodes", name=args.name)
    if not nodes:
        err("No resources found")
        return 0
    results = await asyncio.gather(*(_stats(ctx.client, n.metadata.name) for n in nodes))
    stats = {n.metadata.name: r for n, r in zip(nodes, results, strict=True)}
    out(render_table(["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"], node_rows(nodes, stats),
                     no_headers=args.no_headers).rstrip("\n"))
    return 0


def pod_rows(usages: list[pb.PodUsage], *, all_namespaces: bool, containers: bool) -> tuple[list[str], list[list[str]]]:
    headers = (["NAMESPACE"] if all_namespaces else []) + (["POD", "NAME"] if containers else ["NAME"]) + \
        ["CPU(cores)", "MEMORY(bytes)"]
    rows: list[list[str]] = []
    for p in sorted(usages, key=lambda u: (u.namespace, u.name)):
        lead = [p.namespace] if all_namespaces else []
        if containers:
            for c in sorted(p.containers, key=lambda x: x.name):
                rows.append([*lead, p.name, c.name, cpu_text(c.cpu.usage_nano_cores),
                             memory_text(c.memory.working_set_bytes)])
        else:
            rows.append([*lead, p.name, cpu_text(p.cpu.usage_nano_cores), memory_text(p.memory.working_set_bytes)])
    return headers, rows


async def pod_usages(ctx: Ctx, namespace: str, selector: str = "", name: str = "") -> list[pb.PodUsage]:
    """Usage of the pods that exist in the namespace ("" all), from the kubelets of the nodes they run on."""
    pods = (await ctx.client.list(core.Pod, namespace=namespace, label_selector=selector)).items
    if name:
        pods = [p for p in pods if p.metadata.name == name]
    wanted = {p.metadata.uid: p for p in pods if p.spec.node_name}
    nodes = sorted({p.spec.node_name for p in wanted.values()})
    results = await asyncio.gather(*(_stats(ctx.client, n) for n in nodes))
    found: list[pb.PodUsage] = []
    for s in results:
        if s is None:
            continue
        found.extend(u for u in s.pods if u.uid in wanted or (not u.uid and any(
            p.metadata.namespace == u.namespace and p.metadata.name == u.name for p in wanted.values())))
    return found


async def top_pods(ctx: Ctx, args: argparse.Namespace) -> int:
    if args.selector:
        parse_label_selector(args.selector)  # report a bad selector before asking any node
    namespace = "" if ctx.all_namespaces else ctx.namespace
    usages = await pod_usages(ctx, namespace, args.selector, args.name)
    if not usages:
        if args.name:
            raise CliError(f"metrics not available yet for pod {ctx.namespace}/{args.name}")
        err("No resources found" + ("" if ctx.all_namespaces else f" in {ctx.namespace} namespace") + ".")
        return 0
    headers, rows = pod_rows(usages, all_namespaces=ctx.all_namespaces, containers=args.containers)
    out(render_table(headers, rows, no_headers=args.no_headers).rstrip("\n"))
    return 0


async def run_top(ctx: Ctx, args: argparse.Namespace) -> int:
    """pbctl top nodes [NAME] | pbctl top pods [NAME] [-A] [-n NS] [--containers] [-l SELECTOR]."""
    what = args.top_cmd
    if what in ("node", "nodes", "no"):
        return await top_nodes(ctx, args)
    return await top_pods(ctx, args)


VERB = verb.Verb("top", "Display resource (CPU/memory) usage", arguments, run_top, rank=150)
