"""Random identifiers and secrets, and how secrets are stored (as hashes only)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

TOKEN_PREFIX = "wharf"


def random_id() -> str:
    """A 128-bit random id for URLs: unguessable and not sequential."""
    return secrets.token_hex(16)


def is_random_id(value: str) -> bool:
    """Could `value` be an id we issued? Checked before it reaches a key, so that hostile
    URLs are a 404 and never a database error."""
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def secret_hash(secret: str) -> str:
    # Secrets are 256 random bits, so a plain SHA-256 is a sufficient one-way store;
    # a slow KDF would only add latency to every request.
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(secret), stored_hash)


@dataclass(frozen=True)
class ApiToken:
    """`wharf_<id>_<secret>`: the id locates the stored hash, so lookups need no scan and
    a token can be revoked by id without ever being shown again."""

    token_id: str
    secret: str

    @property
    def text(self) -> str:
        return f"{TOKEN_PREFIX}_{self.token_id}_{self.secret}"

    @classmethod
    def new(cls) -> ApiToken:
        return cls(token_id=random_id(), secret=secrets.token_urlsafe(32))

    @classmethod
    def parse(cls, text: str) -> ApiToken | None:
        prefix, _, rest = text.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or not is_random_id(token_id) or not secret:
            return None
        return cls(token_id=token_id, secret=secret)


def new_session_token() -> str:
    """The PEP 694 session token: the stage capability, 256 random bits."""
    return secrets.token_urlsafe(32)


def session_id_for(session_token: str) -> str:
    """Session ids are derived from the session token (PEP 694 asks that session URLs use
    it to be unguessable) by a one-way function, so a session URL never reveals the stage
    capability while the stage URL still locates its session in one read."""
    digest = hashlib.sha256(b"wharf-session\0" + session_token.encode()).digest()
    return digest[:16].hex()


def token_id_in(header: str | None) -> str | None:
    """The id of the API token an Authorization header carries, if it carries one."""
    secret = credentials_from_header(header)
    token = ApiToken.parse(secret) if secret else None
    return token.token_id if token else None


def credentials_from_header(header: str | None) -> str | None:
    """The token in `Authorization: Basic __token__:<token>` or `Bearer <token>`."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, sep, password = decoded.partition(":")
        if not sep or username != "__token__":
            return None
        return password or None
    return None
