"""gRPC health probes (grpc.health.v1.Health/Check), as the kubelet's `grpc:` probe handler.

The request and response are two tiny messages, encoded by hand so no health-checking package is needed.
When the kubelet is not inside the node's network namespace (tests), the check runs in a child process
that entered it (`nsenter --net=PATH python -m node_agent.grpc_probe ADDR SERVICE TIMEOUT`), because
gRPC opens its sockets on its own threads, which a setns(2)'d worker thread cannot lend them.
"""

from __future__ import annotations

import asyncio
import sys

import grpc

from pybernetes import rpc

METHOD = "/grpc.health.v1.Health/Check"
SERVING = 1
STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def encode_request(service: str) -> bytes:
    data = service.encode()
    if not data:
        return b""
    out = bytearray(b"\x0a")
    n = len(data)
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            break
    return bytes(out) + data


def decode_status(data: bytes) -> int:
    """HealthCheckResponse.status (field 1, varint); absent means UNKNOWN (0)."""
    i = 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag == 0x08:
            value, shift = 0, 0
            while i < len(data):
                b = data[i]
                i += 1
                value |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    return value
            return 0
        return 0  # an unexpected field: treat as unknown
    return 0


async def check(address: str, service: str, timeout: float) -> tuple[bool, str]:
    channel = rpc.channel(address)
    try:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        data = await call(encode_request(service), timeout=timeout)
    except grpc.aio.AioRpcError as e:
        return False, f"failed to connect service {address!r} within {timeout}s: {e.code().name}: {e.details()}"
    finally:
        await channel.close()
    status = decode_status(data)
    if status != SERVING:
        return False, f"service unhealthy (responded with {STATUS_NAMES.get(status, status)!r})"
    return True, "SERVING"


async def check_in_netns(netns_path: str, address: str, service: str, timeout: float) -> tuple[bool, str]:
    proc = await asyncio.create_subprocess_exec(
        "nsenter", f"--net={netns_path}", sys.executable, "-m", "node_agent.grpc_probe", address, service,
        str(timeout), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout + 10)
    except TimeoutError:
        proc.kill()
        return False, f"grpc probe timed out after {timeout}s"
    return proc.returncode == 0, out.decode(errors="replace").strip()


def main() -> None:
    address, service, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    ok, msg = asyncio.run(check(address, service, timeout))
    print(msg)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
