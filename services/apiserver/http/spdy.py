"""SPDY/3.1 framing, as much of it as kubectl's port-forward needs (client-go tunnels a SPDY/3.1 connection
inside a WebSocket, subprotocol `SPDY/3.1+portforward.k8s.io`, one binary message per write).

`Decoder.feed(bytes)` yields the complete frames read so far; `Encoder` writes SYN_REPLY, DATA, RST_STREAM,
PING and GOAWAY. Header blocks are zlib streams (one per direction, sync-flushed per block) primed with the
protocol's dictionary (the SPDY/3 draft, section 2.6.10.1). Flow control (WINDOW_UPDATE) is not enforced: the
Go implementation client-go uses (spdystream) ignores it too.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_CANCEL, RST_INTERNAL_ERROR = 1, 5, 6
MAX_DATA = 0xFFFFFF

_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
    "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
    "content-base", "content-encoding", "content-language", "content-length", "content-location", "content-md5",
    "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host", "if-match",
    "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after",
    "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
    "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie",
    "keep-alive", "origin",
)
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505203 Non-Au"
    "thoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidd"
    "en404 Not Found500 Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr Ma"
    "y Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,imag"
    "e/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,publicpri"
    "vatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The header compression dictionary: each word with a 4-byte big-endian length, then the tail, as the draft
# lists it.
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class ProtocolError(ValueError):
    """Bytes that are not SPDY/3 (the connection is then closed)."""


@dataclass
class Frame:
    """A control frame (`type` > 0) or a DATA frame (`type` 0, `stream_id`, `data`)."""
    type: int
    flags: int
    stream_id: int = 0
    data: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    value: int = 0  # PING id, RST_STREAM status, WINDOW_UPDATE delta

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


def _headers(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        (count,), pos = struct.unpack_from(">I", block), 4
        for _ in range(count):
            (n,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
            (m,) = struct.unpack_from(">I", block, pos)
            out[name.lower()] = block[pos + 4:pos + 4 + m].decode()
            pos += 4 + m
    except (struct.error, UnicodeDecodeError) as e:
        raise ProtocolError(f"a header block cannot be read: {e}") from None
    return out


class Decoder:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def feed(self, data: bytes) -> Iterator[Frame]:
        self._buf += data
        while len(self._buf) >= 8:
            length = int.from_bytes(self._buf[5:8], "big")
            if len(self._buf) < 8 + length:
                return
            head, body = bytes(self._buf[:8]), bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            flags = head[4]
            if not head[0] & 0x80:
                yield Frame(0, flags, int.from_bytes(head[:4], "big") & 0x7FFFFFFF, body)
                continue
            version = int.from_bytes(head[:2], "big") & 0x7FFF
            kind = int.from_bytes(head[2:4], "big")
            if version != VERSION:
                raise ProtocolError(f"SPDY version {version} is not supported (only 3)")
            yield self._control(kind, flags, body)

    def _control(self, kind: int, flags: int, body: bytes) -> Frame:
        def u31(at: int) -> int:
            return int.from_bytes(body[at:at + 4], "big") & 0x7FFFFFFF

        if kind == SYN_STREAM:
            try:
                block = self._inflate.decompress(body[10:])
            except zlib.error as e:
                raise ProtocolError(f"a header block cannot be decompressed: {e}") from None
            return Frame(kind, flags, u31(0), headers=_headers(block))
        if kind in (RST_STREAM, WINDOW_UPDATE):
            return Frame(kind, flags, u31(0), value=u31(4))
        if kind == PING:
            return Frame(kind, flags, value=int.from_bytes(body[:4], "big"))
        if kind == GOAWAY:
            return Frame(kind, flags, u31(0))
        return Frame(kind, flags)  # SETTINGS, HEADERS, SYN_REPLY...: nothing a server acts on here


class Encoder:
    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zdict=DICTIONARY)

    @staticmethod
    def _control(kind: int, flags: int, body: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(body)) + body

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        raw = struct.pack(">I", len(headers or {}))
        for k, v in (headers or {}).items():
            raw += struct.pack(">I", len(k)) + k.lower().encode() + struct.pack(">I", len(v)) + v.encode()
        block = self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + block)

    @staticmethod
    def data(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
        if len(payload) > MAX_DATA:
            raise ValueError("a DATA frame holds at most 16 MiB")
        return struct.pack(">II", stream_id, ((FLAG_FIN if fin else 0) << 24) | len(payload)) + payload

    def rst_stream(self, stream_id: int, status: int = RST_CANCEL) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream_id: int) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream_id, 0))
