"""The identity service's signing key: one RSA key, kept in the data folder (or made per run in memory).

Published as a JSON Web Key Set, as Microsoft Entra ID publishes its keys at ``/{tenant}/discovery/v2.0/keys``;
the services fetch it and verify tokens' RS256 signatures with it. The key id (``kid``, also ``x5t``) is the
key's SHA-1 thumbprint of its public numbers, base64url: stable for one key, new for a new one.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


class SigningKey:
    """An RSA private key with its key id and public JWK."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self.private_key = private_key
        numbers = private_key.public_key().public_numbers()
        self.n = _b64url(_int_bytes(numbers.n))
        self.e = _b64url(_int_bytes(numbers.e))
        self.kid = _b64url(hashlib.sha1(f"{self.n}.{self.e}".encode()).digest())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def load_or_create(cls, path: Path | None) -> SigningKey:
        """The key in ``path`` (PEM), created there on first use; a fresh key when ``path`` is None (memory)."""
        if path is None:
            return cls.generate()
        if path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError(f"{path} does not hold an RSA private key")
            return cls(loaded)
        key = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # readable by its owner only: whoever holds it can mint any token the services accept
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        return key

    def jwk(self) -> dict[str, Any]:
        """The public key as Entra publishes its keys (``kty``, ``use``, ``kid``, ``x5t``, ``n``, ``e``)."""
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid, "n": self.n, "e": self.e}
