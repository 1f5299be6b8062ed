"""The apiserver's EtcdStatus RPC against a real single-member etcd: the member with its id, client URL, leader
mark, raft index and DB size; any authenticated user may read it, a caller without credentials may not."""

from __future__ import annotations

import pytest

from pybernetes import errors
from pybernetes.client.client import Client
from pybernetes.rpc import ChannelTLS
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration


async def test_etcd_status_reports_the_members(apiserver: ApiServer) -> None:
    st = await apiserver.client.etcd_status()
    assert len(st.members) == 1
    m = st.members[0]
    assert m.error == "" and m.leader and st.leader == m.id
    assert m.name and m.client_urls == [apiserver.etcd.endpoint]
    assert m.raft_index > 0 and m.raft_term > 0 and m.revision > 0 and m.db_size > 0 and m.version


async def test_etcd_status_is_for_authenticated_users(apiserver: ApiServer) -> None:
    with (apiserver.cfg.data_dir / "tokens.csv").open("a") as f:
        f.write("viewer-token,viewer,viewer,\n")
    await apiserver.restart()  # the tokens file is read at start
    async with apiserver.new_client(token="viewer-token", timeout=10) as viewer:
        assert [m.leader for m in (await viewer.etcd_status()).members] == [True]
    # gRPC requires a client certificate: a caller without one (nor a token) is refused at the handshake.
    async with Client(apiserver.address, token="", timeout=10, tls=ChannelTLS(apiserver.tls.ca_pem)) as anonymous:
        with pytest.raises(errors.Unavailable):
            await anonymous.etcd_status()
