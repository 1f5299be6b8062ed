"""The client config is a standard kubeconfig: where it is found, how KUBECONFIG's files merge, where the gRPC
address comes from, and the lab's context merged into (and removed from) the user's kubeconfig."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab import control_plane
from lab.state import LabState
from pybernetes import errors, ports
from pybernetes.client import config as client_config


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("PBCONFIG", raising=False)
    return h


def kubeconfig(path: Path, name: str, grpc: str, *, token: str = "tok", current: bool = True) -> Path:
    client_config.write_kubeconfig(path, f"https://{grpc.split(':')[0]}:6443", grpc, token, b"CA-" + name.encode(),
                                   name=name)
    if not current:
        doc = yaml.safe_load(path.read_text())
        doc["current-context"] = ""
        path.write_text(yaml.safe_dump(doc))
    return path


def test_search_order(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    legacy = kubeconfig(home / ".pybernetes" / "config", "legacy", "10.0.0.4:1")
    assert client_config.load().server == "10.0.0.4:1"  # the oldest fallback
    pb = kubeconfig(tmp_path / "pbconfig", "pb", "10.0.0.3:1")
    monkeypatch.setenv("PBCONFIG", str(pb))
    assert client_config.load().server == "10.0.0.3:1"
    kubeconfig(home / ".kube" / "config", "kube", "10.0.0.2:1")
    assert client_config.load().server == "10.0.0.2:1"  # ~/.kube/config before the pybernetes places
    env = kubeconfig(tmp_path / "env", "env", "10.0.0.1:1")
    monkeypatch.setenv("KUBECONFIG", str(env))
    assert client_config.load().server == "10.0.0.1:1"
    assert client_config.load(str(legacy)).server == "10.0.0.4:1"  # --kubeconfig wins over everything
    assert client_config.config_path() == env


def test_nothing_found_says_where_it_looked(home: Path) -> None:
    with pytest.raises(errors.ConfigError, match=r"no kubeconfig at .*\.kube/config"):
        client_config.load()
    assert client_config.load(server="h:1").server == "h:1"  # --server alone needs no file


def test_flags_beside_an_emptied_kubeconfig(home: Path) -> None:
    # What `pbctl lab down` (as `kind delete`) leaves: no contexts, no current one.
    (home / ".kube").mkdir()
    (home / ".kube" / "config").write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n"
                                          "users: []\ncurrent-context: ''\n")
    cfg = client_config.load(server="h:1", token="t")
    assert (cfg.server, cfg.token) == ("h:1", "t")
    with pytest.raises(errors.ConfigError, match="no context named 'default'"):
        client_config.load()


def test_kubeconfig_list_merges_first_wins(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = kubeconfig(tmp_path / "a", "shared", "10.0.0.1:1", token="a", current=False)
    b = kubeconfig(tmp_path / "b", "shared", "10.0.0.2:1", token="b")
    c = kubeconfig(tmp_path / "c", "other", "10.0.0.3:1", token="c")
    monkeypatch.setenv("KUBECONFIG", f"{a}:{tmp_path / 'missing'}:{b}:{c}")
    cfg = client_config.load()
    # current-context: the first file that sets one (b); entries named `shared`: the first file's (a)
    assert (cfg.context, cfg.server, cfg.token, cfg.ca_pem) == ("shared", "10.0.0.1:1", "a", b"CA-shared")
    other = client_config.load(context="other")
    assert (other.server, other.token) == ("10.0.0.3:1", "c")
    doc = client_config.merged(client_config.search_paths())
    assert [x["name"] for x in doc["contexts"]] == ["shared", "other"]
    with pytest.raises(errors.ConfigError, match="no context named 'nope'"):
        client_config.load(context="nope")


def test_grpc_address_from_the_extension_or_the_server_host() -> None:
    ext = [{"name": client_config.GRPC_EXTENSION, "extension": {"address": "relay:7001"}}]
    assert client_config.grpc_address({"server": "https://h:6443", "extensions": ext}) == "relay:7001"
    # A kubeconfig another tool wrote for the same apiserver: gRPC on its host, the gRPC port.
    assert client_config.grpc_address({"server": "https://h:6443"}) == f"h:{ports.APISERVER_GRPC}"
    assert client_config.grpc_address({"server": "https://[fd00::1]:6443"}) == f"[fd00::1]:{ports.APISERVER_GRPC}"
    assert client_config.grpc_address({"server": "10.0.0.1:6442"}) == "10.0.0.1:6442"  # the older gRPC-only shape


def test_no_ca_no_ca_data(tmp_path: Path) -> None:
    path = tmp_path / "c"
    client_config.write_kubeconfig(path, "https://h:6443", "h:6442", "t", b"")
    assert "certificate-authority-data" not in yaml.safe_load(path.read_text())["clusters"][0]["cluster"]
    assert client_config.load(str(path)).ca_pem == b""


def test_merge_and_remove_a_context_leaves_the_others(tmp_path: Path) -> None:
    user = tmp_path / "kube" / "config"
    kubeconfig(user, "work", "10.1.0.1:6442")
    user.chmod(0o640)
    src = kubeconfig(tmp_path / "admin.conf", "default", "127.0.0.1:6442", token="labtok")
    client_config.merge_context(user, src, "pybernetes-lab")
    doc = yaml.safe_load(user.read_text())
    assert doc["current-context"] == "pybernetes-lab"
    assert [c["name"] for c in doc["contexts"]] == ["work", "pybernetes-lab"]
    assert doc["contexts"][1]["context"] == {"cluster": "pybernetes-lab", "user": "pybernetes-lab",
                                             "namespace": "default"}
    assert user.stat().st_mode & 0o777 == 0o640  # the user's file keeps its mode
    cfg = client_config.load(str(user))
    assert (cfg.server, cfg.token, cfg.https_server) == ("127.0.0.1:6442", "labtok", "https://127.0.0.1:6443")
    assert client_config.load(str(user), context="work").server == "10.1.0.1:6442"
    client_config.merge_context(user, src, "pybernetes-lab")  # again: replaced, not duplicated
    assert len(yaml.safe_load(user.read_text())["clusters"]) == 2
    assert client_config.remove_context(user, "pybernetes-lab")
    doc = yaml.safe_load(user.read_text())
    assert [c["name"] for s in ("clusters", "users", "contexts") for c in doc[s]] == ["work", "work", "work"]
    assert doc["current-context"] == ""
    assert not client_config.remove_context(user, "pybernetes-lab")  # nothing left to remove
    assert not client_config.remove_context(tmp_path / "absent", "pybernetes-lab")


def test_lab_publishes_into_kubeconfig_env_and_unpublishes(home: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    st = LabState(dir=str(tmp_path / "lab"))
    st.info["admin_conf"] = str(kubeconfig(tmp_path / "lab" / "admin.conf", "pybernetes-lab", "127.0.0.1:6442"))
    # No kubeconfig yet: ~/.kube/config is created, owner-only.
    assert control_plane.publish_kubeconfig(st) == str(home / ".kube" / "config")
    assert (home / ".kube" / "config").stat().st_mode & 0o777 == 0o600
    assert client_config.load().context == "pybernetes-lab"
    assert control_plane.unpublish_kubeconfig(st) == str(home / ".kube" / "config")
    # With KUBECONFIG set, its first file is the one changed (the test harness' way not to touch ~/.kube).
    mine = kubeconfig(tmp_path / "mine", "mine", "10.2.0.1:6442")
    monkeypatch.setenv("KUBECONFIG", f"{mine}:{home / '.kube' / 'config'}")
    assert control_plane.publish_kubeconfig(st) == str(mine)
    assert client_config.load().server == "127.0.0.1:6442"
    assert control_plane.unpublish_kubeconfig(st) == str(mine)
    doc = yaml.safe_load(mine.read_text())
    assert [c["name"] for c in doc["contexts"]] == ["mine"] and doc["current-context"] == ""
    assert control_plane.unpublish_kubeconfig(st) == ""
