"""Compact JWS (RFC 7515) signing and verification with the ServiceAccount key pair, as Kubernetes'
pkg/serviceaccount/jwt.go: ES256 for EC P-256 keys (what pybernetes.tls makes), RS256 for RSA keys (kubeadm's
sa.key), the header's `kid` the base64url SHA-256 of the public key's DER (keyIDFromPublicKey).

Only the signature is checked here; what the claims must say is claims.py's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class TokenError(Exception):
    """Not a token signed by one of our keys (malformed, unknown key, bad signature)."""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise TokenError(f"malformed base64url: {e}") from None


def key_id(pub: PublicKey) -> str:
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64(hashlib.sha256(der).digest())


def algorithm(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if key.curve.name != "secp256r1":
            raise ValueError(f"EC service account keys must be P-256 (ES256), not {key.curve.name}")
        return "ES256"
    return "RS256"


def load_private_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, PrivateKey):
        raise ValueError(f"{path}: expected an EC P-256 or RSA private key")
    algorithm(key)
    return key


_PEM = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.S)


def load_public_keys(path: Path) -> list[PublicKey]:
    """Every key in a PEM file (public keys, or private keys whose public half is used), as kube-apiserver
    reads --service-account-key-file."""
    out: list[PublicKey] = []
    for m in _PEM.finditer(path.read_bytes()):
        if b"PRIVATE" in m.group(1):
            priv = serialization.load_pem_private_key(m.group(0), password=None)
            if not isinstance(priv, PrivateKey):
                raise ValueError(f"{path}: expected EC P-256 or RSA keys")
            out.append(priv.public_key())
        else:
            pub = serialization.load_pem_public_key(m.group(0))
            if not isinstance(pub, PublicKey):
                raise ValueError(f"{path}: expected EC P-256 or RSA keys")
            out.append(pub)
    if not out:
        raise ValueError(f"{path}: no PEM keys found")
    return out


def sign(claims: dict[str, Any], key: PrivateKey) -> str:
    header = {"alg": algorithm(key), "kid": key_id(key.public_key())}
    signing_input = (b64(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + b64(json.dumps(claims, separators=(",", ":")).encode()))
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS wants raw r||s, not DER
    else:
        sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64(sig)


def looks_like_jwt(token: str) -> bool:
    parts = token.split(".")
    return len(parts) == 3 and all(parts)


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload, unverified: to see whether the token is ours (its issuer) before checking it."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("a JWT has three dot-separated parts")
    try:
        claims = json.loads(unb64(parts[1]))
    except ValueError as e:
        raise TokenError(f"malformed payload: {e}") from None
    if not isinstance(claims, dict):
        raise TokenError("the payload is not a JSON object")
    return claims


def _verify_one(pub: PublicKey, alg: str, signing_input: bytes, sig: bytes) -> bool:
    try:
        if alg == "ES256" and isinstance(pub, ec.EllipticCurvePublicKey):
            if len(sig) != 64:
                return False
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            pub.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
            return True
        if alg == "RS256" and isinstance(pub, rsa.RSAPublicKey):
            pub.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
            return True
    except InvalidSignature:
        return False
    return False


def verify(token: str, keys: Sequence[PublicKey]) -> dict[str, Any]:
    """The claims of `token` once its signature verifies with one of `keys` (the one its kid names first)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("a JWT has three dot-separated parts")
    try:
        header = json.loads(unb64(parts[0]))
    except ValueError as e:
        raise TokenError(f"malformed header: {e}") from None
    if not isinstance(header, dict):
        raise TokenError("the header is not a JSON object")
    alg = header.get("alg")
    if alg not in ("ES256", "RS256"):
        raise TokenError(f"unsupported signing algorithm {alg!r}")
    kid = header.get("kid")
    ordered = sorted(keys, key=lambda k: key_id(k) != kid)
    signing_input = f"{parts[0]}.{parts[1]}".encode()
    sig = unb64(parts[2])
    if not any(_verify_one(k, str(alg), signing_input, sig) for k in ordered):
        raise TokenError("invalid signature")
    return unverified_claims(token)
