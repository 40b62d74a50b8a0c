"""Secrets and how they are kept: API tokens, passwords, login JWTs.

API tokens look like `cgis_<lookup>_<secret>`. The lookup part is stored in
clear and indexed, so verifying a token reads one row instead of trying every
hash; the secret part is stored only as an argon2id hash. Passwords are
argon2id hashes too. Login JWTs are HS256, short-lived, and carry only the
user id: role, grids and the disabled flag are read from the database on each
request, so changes apply immediately.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gis_api.settings import Settings

TOKEN_PREFIX = "cgis_"  # noqa: S105 (a marker, not a secret)
JWT_ALGORITHM = "HS256"
JWT_SECRET_FILE = "jwt_secret"  # noqa: S105 (a file name)
MIN_PASSWORD_LENGTH = 10

# RFC 9106's second recommended option (64 MiB, t=3, p=4): argon2-cffi's defaults.
_hasher = PasswordHasher()
# Verified against when a user name is unknown, so a login costs the same either way.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class NewToken:
    """A freshly issued API token: show `token` once, store `lookup` and `secret_hash`."""

    token: str
    lookup: str
    secret_hash: str


def issue_token() -> NewToken:
    """A new random API token (256-bit secret) and what the database keeps of it."""
    lookup = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewToken(f"{TOKEN_PREFIX}{lookup}_{secret}", lookup, _hasher.hash(secret))


def split_token(token: str) -> tuple[str, str] | None:
    """(lookup, secret) of a well-formed API token, else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    lookup, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or len(lookup) != 12 or not secret or len(secret) > 128:
        return None
    return lookup, secret


def hash_password(password: str) -> str:
    """The argon2id hash to store for `password`."""
    return _hasher.hash(password)


def verify_secret(stored_hash: str | None, secret: str) -> bool:
    """Whether `secret` matches `stored_hash` (a missing hash costs a dummy verify)."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, secret) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether a stored hash uses weaker parameters than today's."""
    return _hasher.check_needs_rehash(stored_hash)


class VerifiedTokens:
    """Tokens whose argon2 check already passed, kept per process on `app.state`.

    An argon2id verify costs tens of milliseconds and 64 MiB, far too much for
    every tile a map asks for. The key includes the stored hash, so a rotated
    or revoked token (its row is gone or changed) never hits the cache; only a
    digest of the token is kept, never the token.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._seen: set[tuple[str, str]] = set()
        self._max = max_entries
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str, stored_hash: str) -> tuple[str, str]:
        return hashlib.sha256(token.encode()).hexdigest(), stored_hash

    def known(self, token: str, stored_hash: str) -> bool:
        """Whether this token was verified against this hash before."""
        return self._key(token, stored_hash) in self._seen

    def remember(self, token: str, stored_hash: str) -> None:
        """Record a successful verification."""
        with self._lock:
            if len(self._seen) >= self._max:
                self._seen.clear()
            self._seen.add(self._key(token, stored_hash))


def jwt_key(settings: Settings) -> bytes:
    """The JWT signing key: CIVIC_GIS_JWT_SECRET, else STATE_DIR/jwt_secret (made once, 0600).

    Kept in the state directory, not in memory, so every worker process and a
    restarted service accept the logins already handed out.
    """
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value().encode()
    path = Path(settings.state_dir) / JWT_SECRET_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return _read_key(path)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48) + "\n")
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise ValueError(f"{path}: the JWT secret is shorter than 32 characters")
    return key


def encode_access_token(key: bytes, user_id: int, minutes: int) -> str:
    """A signed login JWT for `user_id`, valid for `minutes`."""
    now = int(time.time())
    claims = {"sub": str(user_id), "iat": now, "exp": now + 60 * minutes, "typ": "access"}
    return jwt.encode(claims, key, algorithm=JWT_ALGORITHM)


def decode_access_token(key: bytes, token: str) -> int | None:
    """The user id of a valid, unexpired login JWT, else None."""
    try:
        claims = jwt.decode(
            token, key, algorithms=[JWT_ALGORITHM], options={"require": ["sub", "exp", "iat"]}
        )
    except jwt.PyJWTError:
        return None
    subject = claims.get("sub")
    if claims.get("typ") != "access" or not isinstance(subject, str) or not subject.isdigit():
        return None
    return int(subject)
