"""Encryption at rest (services/apiserver/storage/encryption.py): the EncryptionConfiguration's parsing and
errors, Kubernetes' stored formats (aescbc, aesgcm), rotation (a new first key still reads the old key's
values; they are stale until rewritten), and the Store over an in-memory etcd holding only ciphertext while
reads, lists and the watch cache see the plain objects."""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pybernetes import errors
from pybernetes.api import kinds
from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry import strategy
from services.apiserver.rest import Rest
from services.apiserver.storage import encryption
from services.apiserver.storage.encryption import DecryptError
from services.apiserver.storage.store import Store
from tests.unit.etcd_fake import FakeEtcd, until

K1, K2 = os.urandom(32), os.urandom(32)
KEY = b"/registry/secrets/default/s"


def config(*providers: dict[str, Any], resources: tuple[str, ...] = ("secrets",)) -> dict[str, Any]:
    return {"kind": "EncryptionConfiguration", "apiVersion": "apiserver.config.k8s.io/v1",
            "resources": [{"resources": list(resources), "providers": list(providers)}]}


def aescbc(*keys: tuple[str, bytes]) -> dict[str, Any]:
    return {"aescbc": {"keys": [{"name": n, "secret": base64.b64encode(k).decode()} for n, k in keys]}}


def aesgcm(*keys: tuple[str, bytes]) -> dict[str, Any]:
    return {"aesgcm": {"keys": [{"name": n, "secret": base64.b64encode(k).decode()} for n, k in keys]}}


IDENTITY: dict[str, Any] = {"identity": {}}


def test_aescbc_format_is_kubernetes() -> None:
    t = encryption.parse(config(aescbc(("key1", K1)), IDENTITY))["secrets"]
    stored = t.to_storage(KEY, b"plain secret bytes")
    prefix = b"k8s:enc:aescbc:v1:key1:"
    assert stored.startswith(prefix) and b"plain" not in stored
    # Decrypted independently of our code: IV (16 bytes), then AES-CBC with PKCS#7 padding.
    body = stored[len(prefix):]
    assert len(body) % 16 == 0
    dec = Cipher(algorithms.AES(K1), modes.CBC(body[:16])).decryptor()
    padded = dec.update(body[16:]) + dec.finalize()
    assert padded[: -padded[-1]] == b"plain secret bytes" and padded[-padded[-1]:] == bytes([padded[-1]]) * padded[-1]
    assert t.from_storage(KEY, stored) == (b"plain secret bytes", False)


def test_aesgcm_format_binds_the_etcd_key() -> None:
    t = encryption.parse(config(aesgcm(("g", K1))))["secrets"]
    stored = t.to_storage(KEY, b"data")
    body = stored[len(b"k8s:enc:aesgcm:v1:g:"):]
    assert AESGCM(K1).decrypt(body[:12], body[12:], KEY) == b"data"  # nonce, then sealed with the key as AD
    with pytest.raises(DecryptError, match='aesgcm key "g" cannot decrypt'):
        t.from_storage(b"/registry/secrets/other/s", stored)  # a value copied under another key


def test_rotation_old_key_still_decrypts_and_is_stale() -> None:
    old = encryption.parse(config(aescbc(("key1", K1)), IDENTITY))["secrets"]
    stored = old.to_storage(KEY, b"v")
    new = encryption.parse(config(aescbc(("key2", K2), ("key1", K1)), IDENTITY))["secrets"]
    assert new.from_storage(KEY, stored) == (b"v", True)  # readable, and rewritten at the next write
    rewritten = new.to_storage(KEY, b"v")
    assert rewritten.startswith(b"k8s:enc:aescbc:v1:key2:") and new.from_storage(KEY, rewritten) == (b"v", False)
    # Plain values written before encryption was on are read by identity, stale too.
    assert new.from_storage(KEY, b"plain") == (b"plain", True)
    # Once key1 is removed, its values name the missing key.
    only2 = encryption.parse(config(aescbc(("key2", K2))))["secrets"]
    with pytest.raises(DecryptError, match=r"k8s:enc:aescbc:v1:key1:.*does not have") as e:
        only2.from_storage(KEY, stored)
    assert "secrets '/registry/secrets/default/s'" in str(e.value)


def test_wrong_key_and_missing_identity_are_clear_errors() -> None:
    stored = encryption.parse(config(aescbc(("key1", K1))))["secrets"].to_storage(KEY, b"v" * 40)
    wrong = encryption.parse(config(aescbc(("key1", K2))))["secrets"]
    with pytest.raises(DecryptError, match='aescbc key "key1" cannot decrypt'):
        wrong.from_storage(KEY, stored)
    with pytest.raises(DecryptError, match="no identity provider"):
        wrong.from_storage(KEY, b"plain")
    # identity first: writes stay plain, encrypted values still read (how to turn encryption off).
    off = encryption.parse(config(IDENTITY, aescbc(("key1", K1))))["secrets"]
    assert off.to_storage(KEY, b"p") == b"p" and off.from_storage(KEY, stored) == (b"v" * 40, True)


@pytest.mark.parametrize(("doc", "message"), [
    ({"kind": "Policy"}, "expected kind EncryptionConfiguration"),
    (config(), r"resources\[0\].providers: at least one provider"),
    (config(aescbc(("k", os.urandom(16)))), r"providers\[0\].aescbc.keys\[0\].secret: the key is 16 bytes"),
    (config({"aescbc": {"keys": [{"name": "k", "secret": "%%%"}]}}), "not valid base64"),
    (config({"aescbc": {"keys": []}}), "keys: at least one key"),
    (config({"secretbox": {"keys": []}}), "secretbox: not supported"),
    (config({"rot13": {}}), "unknown provider 'rot13'"),
    (config(IDENTITY, resources=("widgets",)), r"resources\[0\]: unknown resource 'widgets'"),
])
def test_bad_configuration_names_the_field(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.ConfigError, match=message):
        encryption.parse(doc, "enc.yaml")


def test_group_qualified_resources_and_first_entry_wins() -> None:
    doc = config(aesgcm(("g", K1)), resources=("secrets", "deployments.apps"))
    doc["resources"].append({"resources": ["secrets"], "providers": [IDENTITY]})
    got = encryption.parse(doc)
    assert set(got) == {"secrets", "deployments"}
    assert got["secrets"].providers[0].label == 'aesgcm key "g"'


def test_write_config_is_private_and_kept(tmp_path: Path) -> None:
    path = encryption.write_config(tmp_path / "pki" / "encryption-config.yaml")
    assert path.stat().st_mode & 0o777 == 0o600
    t = encryption.load(path)["secrets"]
    assert t.to_storage(KEY, b"x").startswith(b"k8s:enc:aescbc:v1:key1:")
    before = path.read_text()
    encryption.write_config(path)
    assert path.read_text() == before
    (tmp_path / "bad.yaml").write_text("kind: [")
    with pytest.raises(errors.ConfigError, match="not YAML"):
        encryption.load(tmp_path / "bad.yaml")


# -- the Store: ciphertext in etcd, plain objects everywhere else -------------------------------------

def secret(name: str, value: bytes) -> core.Secret:
    s = core.Secret()
    s.metadata.name, s.metadata.namespace = name, "default"
    s.data["password"] = value
    return s


@pytest.fixture
async def etcd() -> FakeEtcd:
    return FakeEtcd()


@contextlib.asynccontextmanager
async def _rest(etcd: FakeEtcd, doc: dict[str, Any]) -> AsyncIterator[Rest]:
    store = Store(etcd, {i.plural: strategy.fields_fn(i) for i in kinds.RESOURCES}, bookmark_interval=3600,
                  transformers=encryption.parse(doc))
    store.start()
    try:
        yield Rest(store)
    finally:
        await store.stop()


async def test_store_encrypts_only_configured_resources_and_caches_plain(etcd: FakeEtcd) -> None:
    async with _rest(etcd, config(aescbc(("key1", K1)), IDENTITY)) as rest:
        await rest.create("namespaces", "", b"\n\x09\n\x07default")
        await rest.create("secrets", "default", secret("s", b"hunter2").SerializeToString())
        cm = core.ConfigMap()
        cm.metadata.name, cm.metadata.namespace = "c", "default"
        cm.data["k"] = "visible"
        await rest.create("configmaps", "default", cm.SerializeToString())
        raw = (await etcd.get(KEY))
        assert raw is not None and raw.value.startswith(b"k8s:enc:aescbc:v1:key1:") and b"hunter2" not in raw.value
        cm_raw = await etcd.get(b"/registry/configmaps/default/c")
        assert cm_raw is not None and b"visible" in cm_raw.value  # not configured: plain
        got = await rest.get("secrets", "default", "s")
        assert isinstance(got, core.Secret) and got.data["password"] == b"hunter2"
        cache = rest.store.cache(kinds.for_class(core.Secret))
        await until(lambda: cache.get(KEY) is not None)
        cached = cache.get(KEY)
        assert cached is not None and isinstance(cached.obj, core.Secret) and cached.obj.data["password"] == b"hunter2"
        listed = await rest.list("secrets", "default", "", "", 10, "", "")  # the default list reads etcd
        assert len(listed.items) == 1 and b"hunter2" in listed.items[0]


async def test_update_rewrites_stale_values_under_the_new_key(etcd: FakeEtcd) -> None:
    async with _rest(etcd, config(aescbc(("key1", K1)), IDENTITY)) as rest:
        await rest.create("namespaces", "", b"\n\x09\n\x07default")
        await rest.create("secrets", "default", secret("s", b"v1").SerializeToString())
    async with _rest(etcd, config(aescbc(("key2", K2), ("key1", K1)), IDENTITY)) as rest:
        cur = await rest.get("secrets", "default", "s")
        # The unchanged object, as `kubectl get -o json | kubectl replace -f -` sends it back.
        await rest.update("secrets", "default", cur.SerializeToString())
        raw = await etcd.get(KEY)
        assert raw is not None and raw.value.startswith(b"k8s:enc:aescbc:v1:key2:")
        again = await rest.get("secrets", "default", "s")
        rv = again.metadata.resource_version
        await rest.update("secrets", "default", again.SerializeToString())  # not stale now: a no-op
        assert (await rest.get("secrets", "default", "s")).metadata.resource_version == rv
    async with _rest(etcd, config(aescbc(("key2", K2)))) as rest:
        got = await rest.get("secrets", "default", "s")
        assert isinstance(got, core.Secret) and got.data["password"] == b"v1"


async def test_missing_key_is_an_error_naming_key_and_resource(etcd: FakeEtcd) -> None:
    async with _rest(etcd, config(aescbc(("key1", K1)))) as rest:
        await rest.create("namespaces", "", b"\n\x09\n\x07default")
        await rest.create("secrets", "default", secret("s", b"v").SerializeToString())
    async with _rest(etcd, config(aescbc(("key2", K2)))) as rest:
        with pytest.raises(errors.InternalError, match=r"secrets '/registry/secrets/default/s'.*key1"):
            await rest.get("secrets", "default", "s")
