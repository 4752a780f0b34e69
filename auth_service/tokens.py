"""Access tokens (ES256 JWT with ``kid``, contract §3) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from auth_service import keys

ALGORITHM = "ES256"
REFRESH_TOKEN_BYTES = 32  # 256 bits of randomness


@dataclass(frozen=True)
class Caller:
    """Who a valid Bearer token names."""

    user_id: uuid.UUID
    session_id: uuid.UUID


class Signer:
    """Signs with one key, verifies with every key of the set, publishes the public JWKS."""

    def __init__(
        self,
        private_pems: dict[str, str],
        signing_kid: str,
        *,
        audience: str,
        issuer: str,
        access_ttl: timedelta,
    ) -> None:
        self._private: dict[str, ec.EllipticCurvePrivateKey] = {}
        for kid, pem in private_pems.items():
            key = serialization.load_pem_private_key(pem.encode(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            self._private[kid] = key
        self._public = {kid: key.public_key() for kid, key in self._private.items()}
        self.signing_kid = signing_kid
        self.audience = audience
        self.issuer = issuer
        self.access_ttl = int(access_ttl.total_seconds())
        self.jwks = keys.jwks(private_pems)

    def access_token(self, user_id: uuid.UUID, session_id: uuid.UUID) -> str:
        now = int(time.time())
        claims = {
            "sub": str(user_id),
            "role": "web_user",
            "sid": str(session_id),
            "aud": self.audience,
            "iss": self.issuer,
            "iat": now,
            "exp": now + self.access_ttl,
        }
        return jwt.encode(
            claims,
            self._private[self.signing_kid],
            algorithm=ALGORITHM,
            headers={"kid": self.signing_kid},
        )

    def verify(self, token: str) -> Caller | None:
        """The caller of a valid access token of ours, else None (any reason)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._public.get(kid) if isinstance(kid, str) else None
            if key is None:
                return None
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "sid", "aud", "iss"]},
            )
            if claims.get("role") != "web_user":
                return None
            return Caller(uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"]))
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
            return None


def new_refresh_token() -> tuple[str, bytes]:
    """A fresh opaque refresh token and the hash that is stored instead of it."""
    token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
    return token, refresh_token_hash(token)


def new_link_token() -> str:
    """A password-reset or email-verification token (256 random bits, url-safe) for a mailed
    link; the database stores only its SHA-256 (auth.token_digest, the same digest as below)."""
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def refresh_token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
