"""HTTP basic-auth credentials for provisioning, in the htpasswd format nginx reads.

Entries are ``user:{SSHA}base64(sha1(password + salt) + salt)``, a scheme nginx's
``auth_basic_user_file`` accepts. The salt is derived from the site, user and password so a
rebuild is byte-identical (builds are deterministic); the file lives inside each generation as
``.htpasswd`` and is swapped with it, so a rotation changes configs and accepted passwords at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

FILENAME = ".htpasswd"


def ssha(password: str, salt: bytes) -> str:
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def render(entries, site: str) -> str:
    """entries: (user, password) pairs, the current one first."""
    lines = []
    for user, password in entries:
        salt = hashlib.blake2b(f"{site}\0{user}\0{password}".encode(), digest_size=8,
                               person=b"polygen-htpasswd"[:16]).digest()
        lines.append(f"{user}:{ssha(password, salt)}")
    return "\n".join(lines) + "\n"


def parse(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            user, _, hashed = line.partition(":")
            out.setdefault(user, hashed.strip())  # like nginx: the first line for a user counts
    return out


def verify(hashed: str, password: str) -> bool:
    if hashed.startswith("{SSHA}"):
        raw = base64.b64decode(hashed[6:])
        digest, salt = raw[:20], raw[20:]
        return hmac.compare_digest(hashlib.sha1(password.encode() + salt).digest(), digest)
    if hashed.startswith("{SHA}"):
        return hmac.compare_digest(base64.b64encode(hashlib.sha1(password.encode()).digest()).decode(), hashed[5:])
    if hashed.startswith("{PLAIN}"):
        return hmac.compare_digest(hashed[7:], password)
    return False


def check_header(users: dict[str, str], authorization: str | None) -> bool:
    """Does an ``Authorization: Basic …`` header match one of the users?"""
    if not authorization or not authorization.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    hashed = users.get(user)
    return hashed is not None and verify(hashed, password)
