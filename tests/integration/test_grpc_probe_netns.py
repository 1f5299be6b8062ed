"""The gRPC probe reaches a server inside a node network namespace from a kubelet outside it."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import AsyncIterator

import pytest

from lab import netns
from node_agent import grpc_probe

pytestmark = pytest.mark.integration

SERVER = textwrap.dedent("""
    import asyncio, grpc
    async def check(request, context):
        return b"\\x08\\x01" if not request else b"\\x08\\x02"
    async def main():
        h = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=None, response_serializer=None)})
        s = grpc.aio.server()
        s.add_generic_rpc_handlers((h,))
        s.add_insecure_port("172.30.61.2:9555")
        await s.start()
        print("ready", flush=True)
        await s.wait_for_termination()
    asyncio.run(main())
""")


@pytest.fixture
async def server_in_netns() -> AsyncIterator[str]:
    net = netns.Network("pb-gp")
    net.create()
    host = net.add_host("pb-gp-node", "172.30.61.2/24")
    proc = await asyncio.create_subprocess_exec(*host.cmd(sys.executable, "-c", SERVER),
                                                stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 20)).strip() == b"ready"
        yield f"/run/netns/{host.netns}"
    finally:
        proc.kill()
        await proc.wait()
        net.destroy([host.netns])


async def test_probe_enters_the_node_namespace(server_in_netns: str) -> None:
    ok, msg = await grpc_probe.check_in_netns(server_in_netns, "172.30.61.2:9555", "", 3)
    assert ok, msg
    ok, msg = await grpc_probe.check_in_netns(server_in_netns, "172.30.61.2:9555", "db", 3)
    assert not ok and "NOT_SERVING" in msg
