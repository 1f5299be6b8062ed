"""The apiserver bench's ceiling: the apiserver's own gRPC service (rpc.proto `API`) doing only the unavoidable work.

- Create: the object's bytes put into etcd through the same EtcdClient (services/apiserver/storage/etcd.py,
  create = put if absent), returned as sent; no validation, defaulting, admission or cache;
- Watch: a bare server-stream that receives every created object (one queue per stream, no filtering,
  the event encoded once), the fan-out the apiserver's watch does.
It runs as its own process, as pb-apiserver does: `python -m bench.api_relay --etcd URL --port N`
(bench/procs.py `start_relay` starts it). Other verbs are unimplemented.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from bench import cli
from pybernetes import rpc
from pybernetes.api.rpc.v1 import rpc_pb2 as pb
from pybernetes.api.rpc.v1 import rpc_pb2_grpc as pb_grpc
from services.apiserver.storage.etcd import EtcdClient


class Relay(pb_grpc.APIServicer):
    def __init__(self, etcd: EtcdClient) -> None:
        self.etcd = etcd
        self.prefix = f"/bench/relay/{os.urandom(4).hex()}/"  # no collision with an earlier run on the same etcd
        self.count = 0
        self.streams: set[asyncio.Queue[pb.WatchEvent]] = set()

    async def Create(self, request: pb.CreateRequest, context: Any) -> pb.Object:
        self.count += 1  # a counter names the key: reading the name would mean parsing the object
        await self.etcd.create(f"{self.prefix}{self.count}".encode(), request.object.raw)
        if self.streams:
            # MODIFIED: it stands for the write whose delivery the apiserver bench times.
            event = pb.WatchEvent(type="MODIFIED", object=request.object)
            for q in self.streams:
                q.put_nowait(event)
        return request.object

    async def Watch(self, request: pb.WatchRequest, context: Any) -> AsyncIterator[pb.WatchEvent]:
        q: asyncio.Queue[pb.WatchEvent] = asyncio.Queue()
        self.streams.add(q)
        try:
            while True:
                yield await q.get()
        finally:
            self.streams.discard(q)


async def serve(etcd_url: str, port: int) -> None:
    etcd = EtcdClient([etcd_url])
    server = rpc.server()
    # The verbs the bench never calls keep the generated UNIMPLEMENTED bodies, which the stubs declare abstract.
    pb_grpc.add_APIServicer_to_server(Relay(etcd), server)  # type: ignore[abstract]
    rpc.bind(server, f"127.0.0.1:{port}")
    await server.start()
    try:
        await server.wait_for_termination()
    finally:
        await etcd.close()


def main() -> None:
    ap = cli.arguments(__doc__, None)
    ap.add_argument("--etcd", required=True, help="etcd client URL")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    asyncio.run(serve(args.etcd, args.port))


if __name__ == "__main__":
    main()
