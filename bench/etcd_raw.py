"""Baseline: raw create throughput into etcd through EtcdClient (no apiserver in the path).

Starts its own etcd (temp dir, free ports) unless --endpoint is given, runs `raw_create_rate`, prints
figures and, as the last line, one JSON object. (The apiserver's ceilings are measured by bench/apiserver.py
itself, in its own run: see there.)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cli
from bench.load import closed_loop
from bench.procs import start_etcd
from services.apiserver.storage.embedded import EmbeddedEtcd
from services.apiserver.storage.etcd import EtcdClient


async def raw_create_rate(
    client: EtcdClient, n_tasks: int, seconds: float, value_size: int
) -> dict[str, Any]:
    """Run n_tasks concurrent create() loops on distinct keys for `seconds`; return rate and latencies."""
    value = os.urandom(value_size)
    run = os.urandom(4).hex()  # unique key space per run so reruns against one etcd never collide
    keys = (f"/bench/raw/{run}/{i}".encode() for i in itertools.count())
    res = await closed_loop(lambda _w: client.create(next(keys), value), n_tasks, seconds)
    return {"ops": res["ops"], "errors": res["errors"], "creates_per_s": res["per_s"], "p50_ms": res["p50_ms"],
            "p99_ms": res["p99_ms"], "tasks": n_tasks, "value_size": value_size}


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    server: EmbeddedEtcd | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    endpoint = args.endpoint
    if endpoint is None:
        tmp = tempfile.TemporaryDirectory(prefix="pb-etcd-bench-")
        server = await start_etcd(Path(tmp.name))
        endpoint = server.endpoint
    client = EtcdClient([endpoint])
    try:
        await raw_create_rate(client, args.tasks, min(1.0, args.seconds / 5), args.value_size)  # warm-up
        result = await raw_create_rate(client, args.tasks, args.seconds, args.value_size)
        result["etcd_version"] = (await client.status()).version
        return result
    finally:
        await client.close()
        if server is not None:
            await server.stop()
        if tmp is not None:
            tmp.cleanup()


def main() -> None:
    p = cli.arguments(__doc__, "short run (well under 60 s total)")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--tasks", type=int, default=64)
    p.add_argument("--value-size", type=int, default=1024)
    p.add_argument("--endpoint", help="use this etcd instead of starting one")
    args = p.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 8.0)
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(_main(args))
    print(
        f"etcd raw create: {result['creates_per_s']} creates/s over {args.seconds} s "
        f"({args.tasks} tasks, {args.value_size} B values), p50 {result['p50_ms']} ms, "
        f"p99 {result['p99_ms']} ms, errors {result['errors']}"
    )
    print(json.dumps({"bench": "etcd_raw", **result}))


if __name__ == "__main__":
    main()
