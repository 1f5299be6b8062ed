"""`pbctl lab ...` (and `python -m lab.cli ...`): the local three-node lab.

    lab up [--workers N] [--profile default|fast] [--etcd-members 1|3] [--dir DIR]
                                                               bring the lab up (a no-op when it is up)
    lab down                                                   remove everything the lab made
    lab status                                                 each component: process alive + health
    lab shell NODE [-- CMD...]                                  run a command in a node's network namespace
    lab stop|start COMPONENT [--node N]                         apiserver, etcd, scheduler, controller-manager,
                                                               dns, kubelet, proxy, containerd
    lab open [dashboards]                                      print the dashboard's URL (pbctl dashboard),
                                                               then Prometheus' (if one was started)
    lab restore FILE                                           etcd back to a snapshot (pbctl etcd snapshot save)

`main()` is the `pbctl-lab` console script, which pbctl runs as a plugin (pbctl.plugins); `run_lab(args)`
runs one parsed command through lab.lifecycle and lab.status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lab import backup, lifecycle, status
from lab.errors import LabError
from lab.profiles import PROFILES
from lab.topology import COMPONENTS, DEFAULT_DIR, DEFAULT_IMAGE_CACHE, Plan, etcd_members

ENV_DIR = "PB_LAB_DIR"


def _default_dir() -> Path:
    return Path(os.environ.get(ENV_DIR) or DEFAULT_DIR)


def _add_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", type=Path, default=None,
                   help=f"lab directory (default ${ENV_DIR} or {DEFAULT_DIR})")


def _populate(lab: argparse.ArgumentParser, common: Sequence[argparse.ArgumentParser] = ()) -> None:
    parents = list(common)
    sub = lab.add_subparsers(dest="lab_cmd", metavar="SUBCOMMAND")
    sub.required = True
    p = sub.add_parser("up", help="bring up a control plane and N worker nodes", parents=parents)
    p.add_argument("--workers", type=int, default=3, help="number of worker nodes (default 3)")
    p.add_argument("--etcd-members", type=int, default=1, choices=(1, 3),
                   help="etcd as one member or a three-member cluster (etcd-1..3) in the control plane")
    p.add_argument("--profile", choices=sorted(PROFILES), default="default",
                   help="timings: default (Kubernetes') or fast (short failure detection)")
    p.add_argument("--image-cache", type=Path, default=DEFAULT_IMAGE_CACHE,
                   help="where the lab images are built once and reused")
    _add_dir(p)
    p = sub.add_parser("down", help="remove everything the lab made", parents=parents)
    _add_dir(p)
    p = sub.add_parser("status", help="health of every lab component, the etcd members, the nodes",
                       parents=parents)
    p.add_argument("-o", "--output", choices=("json",), default="")
    _add_dir(p)
    p = sub.add_parser("shell", help="run a command inside a lab host's network namespace", parents=parents)
    p.add_argument("host", metavar="NODE", help="node-1.., or control-plane")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD")
    _add_dir(p)
    for verb in ("stop", "start"):
        p = sub.add_parser(verb, help=f"{verb} one component", parents=parents)
        p.add_argument("component", choices=[*COMPONENTS, "registry",
                                             "relay", "prometheus", *(m.record for m in etcd_members(Path(), 3))],
                       help="a component (all of its processes), or one etcd member (etcd-1..3)")
        p.add_argument("--node", default="", help="only on this node (kubelet, proxy, containerd)")
        _add_dir(p)
    p = sub.add_parser("restore", help="restore etcd from a snapshot (pbctl etcd snapshot save FILE)",
                       parents=parents)
    p.add_argument("file", type=Path, metavar="FILE")
    _add_dir(p)
    p = sub.add_parser("open", help="print the dashboards' URLs", parents=parents)
    p.add_argument("what", nargs="?", default="dashboards", choices=["dashboards"])
    _add_dir(p)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pbctl lab", description="The pybernetes local lab.")
    _populate(p)
    return p


async def run_lab(args: argparse.Namespace) -> int:
    lab_dir: Path = getattr(args, "dir", None) or _default_dir()
    cmd = args.lab_cmd
    try:
        if cmd == "up":
            if args.workers < 1 or args.workers > 9:
                raise LabError("--workers must be between 1 and 9")
            plan = Plan(dir=lab_dir, workers=args.workers, profile=PROFILES[args.profile],
                        image_cache=args.image_cache, etcd_count=args.etcd_members)
            return await lifecycle.up(plan)
        if cmd == "down":
            return await lifecycle.down(lab_dir)
        if cmd == "status":
            return await status.status(lab_dir, output=args.output)
        if cmd == "shell":
            rest = list(args.cmd)
            if rest and rest[0] == "--":
                rest = rest[1:]
            argv = status.shell_argv(lab_dir, args.host, rest)
            proc = await asyncio.create_subprocess_exec(*argv)
            return await proc.wait()
        if cmd == "stop":
            return await lifecycle.stop_component(lab_dir, args.component, args.node)
        if cmd == "start":
            return await lifecycle.start_component(lab_dir, args.component, args.node)
        if cmd == "restore":
            return await backup.restore(lab_dir, args.file)
        if cmd == "open":
            return await status.open_dashboards(lab_dir)
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"error: unknown lab command {cmd!r}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        code = asyncio.run(run_lab(args))
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
