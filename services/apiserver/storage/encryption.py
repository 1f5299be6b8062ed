"""Encryption at rest: kube-apiserver's EncryptionConfiguration (apiserver.config.k8s.io/v1,
--encryption-provider-config) and the value transformers the Store applies to the configured resources.

    kind: EncryptionConfiguration
    apiVersion: apiserver.config.k8s.io/v1
    resources:
      - resources: [secrets]
        providers:
          - aescbc: {keys: [{name: key1, secret: <base64 of 32 random bytes>}]}
          - identity: {}

The first provider (its first key) encrypts every write; every provider decrypts, chosen by the value's
prefix as Kubernetes stores it: `k8s:enc:aescbc:v1:<key name>:` + IV + AES-CBC(PKCS#7) ciphertext,
`k8s:enc:aesgcm:v1:<key name>:` + 12-byte nonce + AES-GCM ciphertext sealed with the etcd key as
authenticated data (kube's staging/src/k8s.io/apiserver/pkg/storage/value/encrypt/aes); identity is the
plain value. A value read through any key but the first is stale: the next write of the object re-encrypts
it (Rest writes a stale object even when unchanged), which is how keys rotate (docs/encryption-at-rest.md).
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pybernetes import errors
from pybernetes.api import kinds

from .etcd import StorageError

API_VERSION = "apiserver.config.k8s.io/v1"
KIND = "EncryptionConfiguration"
ENCRYPTED = b"k8s:enc:"  # every provider's prefix but identity's starts so
_BLOCK = 16
_NONCE = 12


class DecryptError(StorageError):
    """A stored value no configured provider can read (missing key or provider, wrong key, corrupt data)."""


class Provider(Protocol):
    @property
    def prefix(self) -> bytes: ...

    @property
    def label(self) -> str: ...  # how errors name it: `aescbc key "key1"`

    def encrypt(self, data: bytes, key: bytes) -> bytes: ...

    def decrypt(self, data: bytes, key: bytes) -> bytes: ...


@dataclass(frozen=True)
class AESCBC:
    """AES-CBC with PKCS#7 padding, a random IV in front, no authentication (Kubernetes' aescbc)."""

    name: str
    secret: bytes

    @property
    def prefix(self) -> bytes:
        return f"k8s:enc:aescbc:v1:{self.name}:".encode()

    @property
    def label(self) -> str:
        return f'aescbc key "{self.name}"'

    def encrypt(self, data: bytes, key: bytes) -> bytes:
        iv = os.urandom(_BLOCK)
        padder = padding.PKCS7(_BLOCK * 8).padder()
        padded = padder.update(data) + padder.finalize()
        enc = Cipher(algorithms.AES(self.secret), modes.CBC(iv)).encryptor()
        return iv + enc.update(padded) + enc.finalize()

    def decrypt(self, data: bytes, key: bytes) -> bytes:
        if len(data) < _BLOCK or (len(data) - _BLOCK) % _BLOCK:
            raise ValueError("the stored data is not a multiple of the block size")
        dec = Cipher(algorithms.AES(self.secret), modes.CBC(data[:_BLOCK])).decryptor()
        padded = dec.update(data[_BLOCK:]) + dec.finalize()
        unpadder = padding.PKCS7(_BLOCK * 8).unpadder()
        return unpadder.update(padded) + unpadder.finalize()  # ValueError on bad padding: a wrong key, mostly


@dataclass(frozen=True)
class AESGCMProvider:
    """AES-GCM with a random 96-bit nonce in front; the etcd key is the authenticated data, so a value
    copied under another key does not decrypt (Kubernetes' aesgcm)."""

    name: str
    secret: bytes

    @property
    def prefix(self) -> bytes:
        return f"k8s:enc:aesgcm:v1:{self.name}:".encode()

    @property
    def label(self) -> str:
        return f'aesgcm key "{self.name}"'

    def encrypt(self, data: bytes, key: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + AESGCM(self.secret).encrypt(nonce, data, key)

    def decrypt(self, data: bytes, key: bytes) -> bytes:
        if len(data) < _NONCE:
            raise ValueError("the stored data was shorter than the required size")
        try:
            return AESGCM(self.secret).decrypt(data[:_NONCE], data[_NONCE:], key)
        except InvalidTag:
            raise ValueError("authentication failed (wrong key, or the value was moved)") from None


@dataclass(frozen=True)
class Identity:
    prefix: bytes = b""
    label: str = "identity"

    def encrypt(self, data: bytes, key: bytes) -> bytes:
        return data

    def decrypt(self, data: bytes, key: bytes) -> bytes:
        return data


class Transformer:
    """One resource's providers, in the configuration's order."""

    def __init__(self, resource: str, providers: list[Provider]) -> None:
        if not providers:
            raise errors.ConfigError(f"{KIND}: {resource}: at least one provider is required")
        self.resource = resource
        self.providers = providers

    def to_storage(self, key: bytes, data: bytes) -> bytes:
        p = self.providers[0]
        return p.prefix + p.encrypt(data, key)

    def from_storage(self, key: bytes, data: bytes) -> tuple[bytes, bool]:
        """(the plain value, stale: read through any provider but the first, so the next write re-encrypts)."""
        for i, p in enumerate(self.providers):
            if p.prefix and data.startswith(p.prefix):
                try:
                    return p.decrypt(data[len(p.prefix):], key), i != 0
                except ValueError as e:
                    raise DecryptError(f"{self._what(key)}: {p.label} cannot decrypt the stored value: {e} "
                                       f"(is the key's secret the one it was written with?)") from None
        if data.startswith(ENCRYPTED):
            stored = data[: data.find(b":", data.find(b":v1:") + 4) + 1] if b":v1:" in data else data[:24]
            names = ", ".join(p.label for p in self.providers)
            raise DecryptError(f"{self._what(key)}: the stored value was encrypted with "
                               f"{stored.decode(errors='replace')!r}, which the encryption configuration does not "
                               f"have (it has: {names}); add that key back to read it")
        for i, p in enumerate(self.providers):
            if not p.prefix:
                return data, i != 0
        raise DecryptError(f"{self._what(key)}: the stored value is not encrypted and the encryption configuration "
                           "has no identity provider to read it; add `- identity: {}` last")

    def _what(self, key: bytes) -> str:
        return f"{self.resource} {key.decode(errors='replace')!r}"


# -- the configuration file ------------------------------------------------------------------------------

def _secret(path: str, raw: Any, sizes: tuple[int, ...]) -> bytes:
    if not isinstance(raw, str) or not raw:
        raise errors.ConfigError(f"{path}: a base64-encoded key is required")
    try:
        secret = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise errors.ConfigError(f"{path}: not valid base64") from None
    if len(secret) not in sizes:
        raise errors.ConfigError(f"{path}: the key is {len(secret)} bytes; it must be "
                                 f"{' or '.join(map(str, sizes))} bytes")
    return secret


def _keyed(path: str, spec: Any, cls: Any, sizes: tuple[int, ...]) -> list[Provider]:
    keys = spec.get("keys") if isinstance(spec, dict) else None
    if not isinstance(keys, list) or not keys:
        raise errors.ConfigError(f"{path}.keys: at least one key is required")
    out: list[Provider] = []
    for j, k in enumerate(keys):
        kp = f"{path}.keys[{j}]"
        name = k.get("name") if isinstance(k, dict) else None
        if not isinstance(name, str) or not name or ":" in name:
            raise errors.ConfigError(f"{kp}.name: a name without ':' is required")
        out.append(cls(name, _secret(f"{kp}.secret", k.get("secret"), sizes)))
    return out


def _providers(path: str, specs: Any) -> list[Provider]:
    if not isinstance(specs, list) or not specs:
        raise errors.ConfigError(f"{path}: at least one provider is required")
    out: list[Provider] = []
    for i, spec in enumerate(specs):
        p = f"{path}[{i}]"
        if not isinstance(spec, dict) or len(spec) != 1:
            raise errors.ConfigError(f"{p}: exactly one of aescbc, aesgcm, identity is required")
        (kind, body), = spec.items()
        if kind == "aescbc":
            out += _keyed(f"{p}.aescbc", body, AESCBC, (32,))
        elif kind == "aesgcm":
            out += _keyed(f"{p}.aesgcm", body, AESGCMProvider, (16, 24, 32))
        elif kind == "identity":
            out.append(Identity())
        elif kind in ("secretbox", "kms"):
            raise errors.ConfigError(f"{p}.{kind}: not supported by pybernetes; use aescbc or aesgcm")
        else:
            raise errors.ConfigError(f"{p}: unknown provider {kind!r} (aescbc, aesgcm, identity)")
    return out


def _group_resource(path: str, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise errors.ConfigError(f"{path}: a resource name is required")
    plural, _, group = name.partition(".")
    info = kinds.for_plural(plural)
    if info is None or info.group != group:
        raise errors.ConfigError(f"{path}: unknown resource {name!r} (plural[.group], e.g. secrets)")
    return info.plural


def parse(doc: Any, source: str = KIND) -> dict[str, Transformer]:
    """plural -> Transformer for every resource the configuration names (the first entry naming one wins)."""
    if not isinstance(doc, dict) or doc.get("kind") != KIND or doc.get("apiVersion") != API_VERSION:
        raise errors.ConfigError(f"{source}: expected kind {KIND}, apiVersion {API_VERSION}")
    entries = doc.get("resources")
    if not isinstance(entries, list) or not entries:
        raise errors.ConfigError(f"{source}: resources: at least one entry is required")
    out: dict[str, Transformer] = {}
    for i, entry in enumerate(entries):
        p = f"{source}: resources[{i}]"
        names = entry.get("resources") if isinstance(entry, dict) else None
        if not isinstance(names, list) or not names:
            raise errors.ConfigError(f"{p}.resources: at least one resource is required")
        providers = _providers(f"{p}.providers", entry.get("providers"))
        for j, n in enumerate(names):
            plural = _group_resource(f"{p}.resources[{j}]", n)
            out.setdefault(plural, Transformer(plural, providers))
    return out


def load(path: Path) -> dict[str, Transformer]:
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise errors.ConfigError(f"--encryption-provider-config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise errors.ConfigError(f"--encryption-provider-config {path}: not YAML: {e}") from None
    return parse(doc, str(path))


def write_config(path: Path) -> Path:
    """A configuration encrypting Secrets with aescbc under a new random key (0600), unless `path` exists:
    what `pbctl lab up` uses. Existing files are kept, so a restarted lab reads its own data."""
    if path.exists():
        return path
    key = base64.b64encode(os.urandom(32)).decode()
    doc = {"kind": KIND, "apiVersion": API_VERSION,
           "resources": [{"resources": ["secrets"],
                          "providers": [{"aescbc": {"keys": [{"name": "key1", "secret": key}]}},
                                        {"identity": {}}]}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return path
