"""ES256 signing keys and the public JWKS (contract §3).

PostgREST verifies access tokens with the JWKS only; auth_service signs with the newest key.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def generate_private_pem() -> str:
    """A new P-256 private key in PKCS#8 PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _b64url(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(32, "big")).rstrip(b"=").decode()


def public_jwk(private_pem: str, kid: str) -> dict[str, str]:
    """The public half of ``private_pem`` as a JWK (no private material)."""
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"key {kid} is not a P-256 EC key (ES256 needs one)")
    numbers = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": _b64url(numbers.x), "y": _b64url(numbers.y),
            "kid": kid, "alg": "ES256", "use": "sig"}


def jwks(keys: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """JWKS of every key (kid -> private PEM): the set PostgREST accepts."""
    return {"keys": [public_jwk(pem, kid) for kid, pem in keys.items()]}


def jwks_json(keys: dict[str, str]) -> str:
    return json.dumps(jwks(keys), separators=(",", ":"))


def load_private_keys(keys_json: str | None, keys_dir: Path | None) -> dict[str, str]:
    """Private keys from the environment (JSON ``{kid: PEM}``) and/or a directory of
    ``<kid>.pem`` files; every key is checked to be P-256. Order: JSON first, then files by name."""
    pems: dict[str, str] = {}
    if keys_json:
        loaded = json.loads(keys_json)
        if not isinstance(loaded, dict):
            raise ValueError("AUTH_JWT_KEYS must be a JSON object {kid: PEM}")
        pems.update({str(kid): str(pem) for kid, pem in loaded.items()})
    if keys_dir is not None:
        for path in sorted(Path(keys_dir).glob("*.pem")):
            pems[path.stem] = path.read_text()
    for kid, pem in pems.items():
        public_jwk(pem, kid)  # raises on anything but a P-256 private key
    return pems


def ensure_dev_key(keys_dir: Path) -> Path:
    """A development signing key for `make run`: creates ``dev-<date>.pem`` (mode 0600) in
    ``keys_dir`` unless the directory already holds a key. Returns the directory."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    if not any(keys_dir.glob("*.pem")):
        path = keys_dir / f"dev-{datetime.now(UTC):%Y%m%d}.pem"
        path.touch(mode=0o600)
        path.write_text(generate_private_pem())
    return keys_dir
