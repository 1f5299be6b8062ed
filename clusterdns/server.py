"""The DNS front end: UDP and TCP listeners, one query -> one response, CoreDNS-named metrics.

`Handler.answer(wire)` parses a query with dnspython, answers names in the cluster domain from the zone
(clusterdns.zone), forwards other names to the upstream nameservers when there are any (the first that
answers wins), and otherwise answers SERVFAIL at once, so a client without an upstream fails fast instead
of waiting for a timeout. A UDP answer that does not fit the client's payload size is truncated (TC set)
and the client retries over TCP, where messages are length-prefixed (RFC 1035 4.2.2). clusterdns.main
starts the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from typing import cast

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
from prometheus_client import Counter, Histogram

from clusterdns.zone import Zone

log = logging.getLogger("pybernetes.clusterdns")

REQUESTS = Counter("coredns_dns_requests_total", "DNS queries received.", ["server", "proto", "type"])
RESPONSES = Counter("coredns_dns_responses_total", "DNS responses sent, by rcode.", ["server", "rcode"])
DURATION = Histogram("coredns_dns_request_duration_seconds", "Time to answer a DNS query.", ["server", "type"],
                     buckets=(0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256,
                              0.512, 1.024, 2.048, 4.096, 8.192))
FORWARD_TIMEOUT = 2.0
_TYPES = {dns.rdatatype.to_text(t) for t in (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.SRV,
                                             dns.rdatatype.PTR, dns.rdatatype.TXT, dns.rdatatype.CNAME,
                                             dns.rdatatype.SOA, dns.rdatatype.NS, dns.rdatatype.MX,
                                             dns.rdatatype.ANY)}


def _type_label(qtype: dns.rdatatype.RdataType) -> str:
    """The metric's type label: common types by name, the rest as "other" (bounded cardinality, as CoreDNS)."""
    name = dns.rdatatype.to_text(qtype)
    return name if name in _TYPES else "other"


class Handler:
    def __init__(self, zone: Zone, upstreams: list[str], server: str = "dns://:53") -> None:
        self.zone = zone
        self.upstreams = [_split(u) for u in upstreams]
        self.server = server

    async def answer(self, wire: bytes, proto: str) -> bytes | None:
        """The response to one query message, or None for garbage not worth answering."""
        t0 = time.perf_counter()
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return _formerr(wire, self.server)
        if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
            resp = dns.message.make_response(query)
            resp.set_rcode(dns.rcode.NOTIMP if query.opcode() != dns.opcode.QUERY else dns.rcode.FORMERR)
            return self._done(resp, "other", t0, proto, 512)
        q = query.question[0]
        qtype = _type_label(q.rdtype)
        REQUESTS.labels(self.server, proto, qtype).inc()
        if self.zone.owns(q.name):
            resp = dns.message.make_response(query)
            resp.flags |= dns.flags.AA
            res = self.zone.lookup(q.name, q.rdtype)
            resp.set_rcode(res.rcode)
            resp.answer.extend(res.answer)
            resp.additional.extend(res.additional)
            resp.authority.extend(res.authority)
        elif self.upstreams:
            resp = await self._forward(query)
        else:
            resp = dns.message.make_response(query)
            resp.set_rcode(dns.rcode.SERVFAIL)
        return self._done(resp, qtype, t0, proto, max(query.payload, 512) if query.edns >= 0 else 512)

    def _done(self, resp: dns.message.Message, qtype: str, t0: float, proto: str, udp_limit: int) -> bytes:
        RESPONSES.labels(self.server, dns.rcode.to_text(resp.rcode())).inc()
        try:
            wire = resp.to_wire(max_size=udp_limit if proto == "udp" else 65535)
        except dns.exception.TooBig:
            resp.answer.clear()
            resp.additional.clear()
            resp.authority.clear()
            resp.flags |= dns.flags.TC
            wire = resp.to_wire()
        DURATION.labels(self.server, qtype).observe(time.perf_counter() - t0)
        return wire

    async def _forward(self, query: dns.message.Message) -> dns.message.Message:
        for host, port in self.upstreams:
            try:
                resp = await dns.asyncquery.udp(query, host, port=port, timeout=FORWARD_TIMEOUT)
                if resp.flags & dns.flags.TC:
                    resp = await dns.asyncquery.tcp(query, host, port=port, timeout=FORWARD_TIMEOUT)
                return resp
            except (dns.exception.DNSException, OSError) as e:
                log.warning("upstream failed upstream=%s:%d error=%s", host, port, e)
        resp = dns.message.make_response(query)
        resp.set_rcode(dns.rcode.SERVFAIL)
        return resp


def _split(upstream: str) -> tuple[str, int]:
    """"10.0.0.2", "10.0.0.2:5353", "[fd00::1]:53" -> (host, port)."""
    if upstream.startswith("["):
        host, _, port = upstream[1:].partition("]:")
        return host.rstrip("]"), int(port or 53)
    if upstream.count(":") == 1:
        host, port = upstream.split(":")
        return host, int(port)
    return upstream, 53


def _formerr(wire: bytes, server: str) -> bytes | None:
    """FORMERR echoing the query id, when at least a header arrived (RFC 1035: a reply a client can match)."""
    if len(wire) < 12:
        return None
    (qid,) = struct.unpack("!H", wire[:2])
    resp = dns.message.Message(id=qid)
    resp.flags = dns.flags.QR
    resp.set_rcode(dns.rcode.FORMERR)
    RESPONSES.labels(server, "FORMERR").inc()
    return resp.to_wire()


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # what create_datagram_endpoint makes

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._reply(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            out = await self.handler.answer(data, "udp")
        except Exception:
            log.exception("query failed client=%s", addr[0])
            return
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)


class DNSServer:
    """UDP and TCP listeners on one address and port."""

    def __init__(self, handler: Handler, host: str, port: int) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self._udp: asyncio.DatagramTransport | None = None
        self._proto: _UDP | None = None
        self._tcp: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        """Listen on TCP first (port 0 picks one), then UDP on the same port; returns the port."""
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)
        self.port = int(self._tcp.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(lambda: _UDP(self.handler),
                                                               local_addr=(self.host, self.port))
        self._udp, self._proto = transport, proto
        return self.port

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._proto is not None:
            for task in list(self._proto.tasks):
                task.cancel()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), 10)
                (length,) = struct.unpack("!H", head)
                data = await asyncio.wait_for(reader.readexactly(length), 10)
                out = await self.handler.answer(data, "tcp")
                if out is None:
                    break
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        except Exception:
            log.exception("tcp query failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
