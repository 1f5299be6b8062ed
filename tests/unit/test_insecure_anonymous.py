"""Security off, piece by piece: --anonymous-auth (a request without credentials is system:anonymous in
system:unauthenticated; without the flag it is 401; a token nobody knows stays 401 either way, as Kubernetes'
FailOnError union), and the bench/test-only plaintext ports refused on anything but a loopback IP, before
anything starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pybernetes import errors
from pybernetes.ports import free_port
from services.apiserver import insecure
from services.apiserver.auth import (
    ANONYMOUS_USER,
    UNAUTHENTICATED_GROUP,
    Credentials,
    TokenAuthenticator,
    UnionAuthenticator,
    User,
    grpc_authenticator,
    rest_authenticator,
)
from services.apiserver.main import Config, parse_args, run


@pytest.mark.parametrize("chain", [grpc_authenticator, rest_authenticator])
async def test_anonymous_only_without_credentials(chain: Callable[..., UnionAuthenticator]) -> None:
    tokens = TokenAuthenticator({"t": User("viewer")})
    anon = chain([tokens], anonymous=True)
    assert await anon.authenticate(Credentials()) == User(ANONYMOUS_USER, "", (UNAUTHENTICATED_GROUP,))
    assert (await anon.authenticate(Credentials(authorization="Bearer t"))).name == "viewer"
    with pytest.raises(errors.Unauthorized, match="unknown credentials"):
        await anon.authenticate(Credentials(authorization="Bearer nope"))
    with pytest.raises(errors.Unauthorized, match="credentials are required"):
        await chain([tokens]).authenticate(Credentials())


def test_anonymous_auth_flag() -> None:
    assert parse_args([]).anonymous_auth is False
    assert parse_args(["--anonymous-auth=true"]).anonymous_auth is True
    cfg = parse_args(["--insecure-grpc-port=7000", "--insecure-port=7001"])
    assert (cfg.insecure_bind_address, cfg.insecure_grpc_port, cfg.insecure_port) == ("127.0.0.1", 7000, 7001)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1"])
def test_loopback_bind_addresses_accepted(address: str) -> None:
    insecure.check_bind_address(address, 7000, 0)
    insecure.check_bind_address(address, 0, 7001)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "10.0.0.1", "192.168.56.10", "localhost", ""])
def test_non_loopback_bind_addresses_refused(address: str) -> None:
    insecure.check_bind_address(address, 0, 0)  # both ports off: nothing listens, nothing to refuse
    for grpc_port, http_port in ((7000, 0), (0, 7001)):
        with pytest.raises(errors.ConfigError, match=r"--insecure-bind-address: .* is not a loopback IP"):
            insecure.check_bind_address(address, grpc_port, http_port)


async def test_apiserver_refuses_before_starting_anything(tmp_path: Path) -> None:
    data = tmp_path / "apiserver"
    cfg = Config(data_dir=data, insecure_bind_address="0.0.0.0", insecure_grpc_port=free_port(),
                 etcd_servers=["http://127.0.0.1:1"])
    with pytest.raises(errors.ConfigError, match="--insecure-bind-address"):
        await run(cfg)
    assert not data.exists()  # no half-written state: no data dir, no certificates, no etcd
