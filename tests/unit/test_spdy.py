"""SPDY/3.1 framing for kubectl's port-forward tunnel: what client-go's spdystream writes, read back."""

from __future__ import annotations

import struct
import zlib

import pytest

from pybernetes import errors
from services.apiserver.http import portforward, spdy


def _syn_stream(z: zlib._Compress, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
    raw = struct.pack(">I", len(headers))
    for k, v in headers.items():
        raw += struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
    block = z.compress(raw) + z.flush(zlib.Z_SYNC_FLUSH)
    body = struct.pack(">IIH", stream_id, 0, 0) + block
    return struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, ((1 if fin else 0) << 24) | len(body)) + body


def test_streams_data_and_pings_split_across_messages() -> None:
    z = zlib.compressobj(zdict=spdy.DICTIONARY)  # one compression context per direction, as spdystream
    wire = (_syn_stream(z, 1, {"streamtype": "error", "port": "80", "requestid": "0"}, fin=True)
            + _syn_stream(z, 3, {"streamtype": "data", "port": "80", "requestid": "0"})
            + spdy.Encoder.data(3, b"GET / HTTP/1.0\r\n\r\n", fin=True)
            + spdy.Encoder().ping(7))
    d = spdy.Decoder()
    frames = [f for i in range(0, len(wire), 5) for f in d.feed(wire[i:i + 5])]  # arbitrary message splits
    assert [(f.type, f.stream_id) for f in frames] == [(spdy.SYN_STREAM, 1), (spdy.SYN_STREAM, 3), (0, 3),
                                                       (spdy.PING, 0)]
    assert frames[0].fin and frames[0].headers == {"streamtype": "error", "port": "80", "requestid": "0"}
    assert frames[1].headers["streamtype"] == "data" and not frames[1].fin
    assert frames[2].data == b"GET / HTTP/1.0\r\n\r\n" and frames[2].fin
    assert frames[3].value == 7


def test_replies_decompress_with_the_dictionary() -> None:
    enc = spdy.Encoder()
    inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
    for stream_id in (1, 3):
        frame = enc.syn_reply(stream_id)
        assert struct.unpack(">HHI", frame[:8])[:2] == (0x8003, spdy.SYN_REPLY)
        assert struct.unpack(">I", frame[8:12])[0] == stream_id
        assert inflate.decompress(frame[12:]) == struct.pack(">I", 0)  # an empty header block


def test_other_versions_are_refused() -> None:
    with pytest.raises(spdy.ProtocolError, match="SPDY version 2"):
        list(spdy.Decoder().feed(struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\0\0\0\1"))


class _Query(dict[str, list[str]]):
    def getall(self, key: str, default: list[str]) -> list[str]:
        return self.get(key, default)


def test_port_queries() -> None:
    assert portforward.parse_ports(_Query(ports=["80,8080", "9090"])) == [80, 8080, 9090]
    with pytest.raises(errors.BadRequest, match="at least one port"):
        portforward.parse_ports(_Query())
    with pytest.raises(errors.BadRequest, match="70000 is not a valid port"):
        portforward.parse_ports(_Query(ports=["70000"]))
