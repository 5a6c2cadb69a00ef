"""Passwords: the secrets file, ``$POLYGEN_SECRET_*`` and the other variables, which password wins
where, and what makes one unusable."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from polygen.inventory.fields import _Ctx
from polygen.inventory.model import ProvAuth
from polygen.yamlnodes import Loc, Map, Scalar, Seq, load_file

SECRETS_FILENAMES = ("secrets.yaml", "secrets.yml")
SECRET_ENV_PREFIX = "POLYGEN_SECRET_"
# A password is one line of printable text wherever it comes from (inline, the secrets file, the
# environment): no control character at all (C0 with tab and newline, DEL, C1), and no lone
# surrogate, which is how Python hands over bytes of the environment that are not UTF-8.
_SECRET_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")


def secret_problem(value: str) -> str | None:
    """Why this password cannot be used (without quoting it), or None."""
    if _SURROGATE_RE.search(value):
        return "is not valid UTF-8 text; set it again as UTF-8"
    if m := _SECRET_CONTROL_RE.search(value):
        hint = " (a YAML block scalar, | or >, ends with a newline: quote the password instead)" \
            if m.group() == "\n" else ""
        return f"contains the control character U+{ord(m.group()):04X}; a password is one line of printable text{hint}"
    return None


ADMIN_PASSWORD_ENV = "POLYGEN_ADMIN_PASSWORD"
MAX_ADMIN_PASSWORD = 32  # device.auth.localAdminPassword is String_0_32 (XSD)
AUTH_KEYS = ("user", "password", "previous")
PROV_PASSWORD_ENV = "POLYGEN_PROVISIONING_PASSWORD"
_AUTH_USER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}")


def _auth(ctx: _Ctx, m: Map, found: _Secrets, env) -> ProvAuth | None:
    p = "site.provisioning_auth"
    am = ctx.mapping(m["provisioning_auth"], p)
    if am is None:
        return None
    ctx.keys(am, p, AUTH_KEYS, ("user",))
    user = ctx.text(am, "user", p)
    if user is not None and not _AUTH_USER_RE.fullmatch(user):
        ctx.error(am["user"].loc, f"{p}.user", f"'{user}' is not a valid user name (letters, digits, . _ -)")
        user = None
    env_password = env.get(PROV_PASSWORD_ENV)
    if env_password and (why := secret_problem(env_password)):
        ctx.error(None, "", f"the provisioning password {why}", file=f"${PROV_PASSWORD_ENV}")
    inline = ctx.text(am, "password", p)
    if inline and (why := secret_problem(inline)):
        ctx.error(am["password"].loc, f"{p}.password", f"the password {why}")
    password = env_password or found.provisioning or inline
    if user is not None and not password:
        ctx.error(am.loc, f"{p}.password", f"missing password: set it here, as provisioning_password in the "
                                           f"secrets file or in ${PROV_PASSWORD_ENV}")
    if password and (":" in password or len(password) > 256):
        ctx.error(am.locs.get("password", am.loc), f"{p}.password", "a provisioning password may not contain ':' nor exceed 256 characters")
    previous = []
    prev = am.get("previous")
    if isinstance(prev, Seq):
        for i, item in enumerate(prev):
            ip = f"{p}.previous[{i}]"
            if not isinstance(item, Map):
                ctx.error(item.loc, ip, "expected {user: ..., password: ...}")
                continue
            ctx.keys(item, ip, ("user", "password"), ("user",))
            u = ctx.text(item, "user", ip)
            if u is not None and not _AUTH_USER_RE.fullmatch(u):
                ctx.error(item["user"].loc, f"{ip}.user", f"'{u}' is not a valid user name (letters, digits, . _ -)")
                continue
            inline = ctx.text(item, "password", ip)
            if inline and (why := secret_problem(inline)):
                ctx.error(item["password"].loc, f"{ip}.password", f"the password {why}")
            pw = found.previous.get(u) or inline if u else None
            if u and not pw:
                ctx.error(item.locs.get("password", item.loc), f"{ip}.password",
                          f"missing password for previous user '{u}': set it here or under "
                          f"provisioning_previous: in the secrets file")
            if u and pw:
                if u == user:
                    # nginx checks only the first line for a user name, so a rotation needs a new name
                    ctx.error(item.loc, f"{ip}.user", f"'{u}' is also the current user; rotate to a new user "
                                                      "name so old and new passwords are both accepted")
                previous.append((u, pw))
    elif prev is not None and not (isinstance(prev, Scalar) and prev.is_null):
        ctx.error(prev.loc, f"{p}.previous", "expected a list of {user: ..., password: ...}")
    if user and password:
        return ProvAuth(user, password, tuple(previous))
    return None


def _admin_password(ctx: _Ctx, m: Map, found: _Secrets, env) -> str | None:
    """``site.admin_password``: $POLYGEN_ADMIN_PASSWORD, then the secrets file, then inline."""
    where = "$" + ADMIN_PASSWORD_ENV if env.get(ADMIN_PASSWORD_ENV) else \
        "admin_password in the secrets file" if found.admin else None
    password = env.get(ADMIN_PASSWORD_ENV) or found.admin or ctx.text(m, "admin_password", "site")
    if not password:
        return None
    problem = None
    if len(password) > MAX_ADMIN_PASSWORD:
        problem = f"{len(password)} characters, but the phones take at most {MAX_ADMIN_PASSWORD}"
    elif not all(" " <= c <= "~" for c in password):
        problem = "only printable ASCII characters (letters, digits, space and punctuation) fit"
    if problem:
        ctx.error(m.locs.get("admin_password", m.loc), "site.admin_password",
                  problem + (f" (the password from {where})" if where else "") + "; choose another password")
        return None
    return password


@dataclass
class _Secrets:
    """What the secrets file holds (everything optional)."""

    by_ext: dict[str, str] = field(default_factory=dict)
    locs: dict[str, Loc] = field(default_factory=dict)
    provisioning: str | None = None
    previous: dict[str, str] = field(default_factory=dict)  # previous provisioning user -> password
    admin: str | None = None  # the phones' admin password


SECRETS_KEYS = ("secrets", "provisioning_password", "provisioning_previous", "admin_password")


def secrets_file(directory: Path, secrets: Path | None = None) -> Path:
    """The secrets file ``load`` reads: the one given, else the inventory's own (``secrets.yaml``,
    which an edit creates, when there is none yet)."""
    if secrets is not None:
        return Path(secrets)
    return next((directory / n for n in SECRETS_FILENAMES if (directory / n).is_file()),
                directory / SECRETS_FILENAMES[0])


def _load_secrets(ctx: _Ctx, directory: Path, secrets: Path | None) -> _Secrets:
    found = _Secrets()
    path = secrets_file(directory, secrets)
    if secrets is None and not path.is_file():
        return found
    if not Path(path).is_file():
        ctx.error(None, "", f"secrets file '{path}' does not exist", file=str(path))
        return found
    if os.stat(path).st_mode & 0o004:
        ctx.warn(None, "", f"secrets file '{path}' is readable by everyone; run: chmod 600 {path}", file=str(path))
    doc, yproblems = load_file(Path(path), str(path))
    for yp in yproblems:
        ctx.error(yp.loc, "", yp.message)
    if doc is None:
        return found
    provisioning_only = isinstance(doc, Map) and "secrets" not in doc and any(k in doc for k in SECRETS_KEYS)
    if not provisioning_only and (not isinstance(doc, Map) or not isinstance(doc.get("secrets"), Map)):
        ctx.error(getattr(doc, "loc", None), "secrets",
                  "expected a mapping 'secrets:' of extension -> password", file=str(path))
        return found
    ctx.keys(doc, "", SECRETS_KEYS)
    sm = doc.get("secrets")
    for ext, text in (_passwords(ctx, sm, "secrets") if isinstance(sm, Map) else ()):
        found.by_ext[ext] = text
        found.locs[ext] = sm.locs[ext]
    found.provisioning = ctx.text(doc, "provisioning_password", "")
    if found.provisioning and (why := secret_problem(found.provisioning)):
        ctx.error(doc["provisioning_password"].loc, "provisioning_password", f"the password {why}")
    found.admin = ctx.text(doc, "admin_password", "")
    if found.admin and (why := secret_problem(found.admin)):
        ctx.error(doc["admin_password"].loc, "admin_password", f"the password {why}")
    if "provisioning_previous" in doc and (pm := ctx.mapping(doc["provisioning_previous"],
                                                             "provisioning_previous")) is not None:
        found.previous.update(_passwords(ctx, pm, "provisioning_previous"))
    return found


def _passwords(ctx: _Ctx, m: Map, path: str):
    """(name, password) of a mapping of the secrets file; a value that is no text is left out."""
    for name, v in m.items():
        if not isinstance(v, Scalar) or v.is_null:
            ctx.error(m.locs[name], f"{path}.{name}", "expected the password as text")
            continue
        if why := secret_problem(v.text):
            ctx.error(v.loc, f"{path}.{name}", f"the password {why}")
        yield name, v.text


def _env_secret_name(ext: str) -> str:
    return SECRET_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", ext).upper()
