"""Does each model find what it fetches in ``firmware/<release>/``? ``verify(model, firmware_dir)``.

A phone asks for its split image ``<part number>.sip.ld`` in the APP_FILE_PATH directory first,
then the combined ``sip.ld`` (docs/polycom.md §6); a SIP 3.2 or older release also needs Polycom's
``sip.cfg`` and ``phone1.cfg``, which hold every default that application has (§10). So, per model:

* no image at all (release not unpacked): a warning, the phones keep the firmware they run;
* a split release (``*.sip.ld``) without this model's part file and without ``sip.ld``: an error,
  the phone would find nothing although the release is there;
* a legacy release without ``sip.cfg`` or ``phone1.cfg``: an error, the phone would boot without
  its defaults;
* a broken symbolic link to a file phones fetch (``fetched``): an error naming it, as the build
  would link nothing there. A broken link where no phone looks is left alone.

Used by ``inventory.load`` (so ``check`` and ``build`` report the same) with the messages below.

``read_releases(firmware_dir, releases)`` reads the release directories once, for the build, so
that ``polygen.plan`` stays pure: it gets the listing, not the directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from polygen.catalog import Model

LEGACY_FILES = ("sip.cfg", "phone1.cfg")


def fetched(name: str, dialect: str) -> bool:
    """Is this file of a release one that phones fetch (so the build links it into out/)?"""
    return name.endswith((".ld", ".ver", ".sig")) or (dialect == "sip3" and name in LEGACY_FILES)


@dataclass(frozen=True)
class ReleaseFile:
    """A file of ``firmware/<release>/`` as the build sees it."""

    name: str
    path: Path
    # what a link to it depends on (its target, size and modification time); None: a broken link
    identity: tuple[str, int, int] | None
    broken: str = ""  # a broken symbolic link: the error if phones fetch it (``broken_link``)


# release -> its files, sorted by name
Releases = Mapping[str, tuple[ReleaseFile, ...]]


def read_releases(firmware_dir: Path | None, releases: Iterable[str]) -> dict[str, tuple[ReleaseFile, ...]]:
    """The files (regular files, links to them, broken links) of each release directory that exists."""
    if firmware_dir is None:
        return {}
    listing = {}
    for release in sorted(set(releases)):
        d = Path(firmware_dir) / release
        if not d.is_dir():
            continue
        files = []
        for p in sorted(d.iterdir()):
            if p.is_file():
                st = p.stat()
                files.append(ReleaseFile(p.name, p, (str(p.resolve()), st.st_size, st.st_mtime_ns)))
            elif p.is_symlink() and not p.exists():
                files.append(ReleaseFile(p.name, p, None, broken_link(p, release)))
        listing[release] = tuple(files)
    return listing


def broken_link(path: Path, release: str) -> str:
    """The error for a broken symbolic link at ``path``, a file phones running ``release`` fetch."""
    return (f"{path}: a broken symbolic link (to {os.readlink(path)}), and phones running {release} fetch this "
            "file: point the link at it, or remove it")


def verify(model: Model, firmware_dir: Path) -> list[tuple[str, str]]:
    """``(severity, message)`` findings for ``model`` against ``firmware_dir``; [] when all is there."""
    rel = model.firmware
    d = Path(firmware_dir) / rel
    try:
        entries = sorted(d.iterdir())
    except OSError:  # not unpacked (missing, or not a directory)
        entries = []
    names = {p.name for p in entries if p.is_file()}
    # skipping a broken link would leave the phones on their old image, or without their
    # defaults, with no word why
    broken = [p for p in entries if p.is_symlink() and not p.exists() and fetched(p.name, model.dialect)]
    out: list[tuple[str, str]] = [("error", broken_link(p, rel)) for p in broken]
    said = {p.name for p in broken}  # what the errors above already name
    images = {n for n in names if n == "sip.ld" or n.endswith(".sip.ld")}
    if not images and not any(n == "sip.ld" or n.endswith(".sip.ld") for n in said):
        out.append(("warning", f"firmware/{rel}/sip.ld not found: {model.name} phones keep the firmware they "
                               f"run; unpack Polycom's {rel} release into {firmware_dir}/{rel}/"))
    elif images and not any(n in images or n in said for n in model.firmware_names):
        if model.part_number:
            out.append(("error", f"firmware/{rel}/ is a split release without {model.part_number}.sip.ld, the "
                                 f"image of the {model.name}, and has no combined sip.ld: unpack that file "
                                 f"(or the combined release) into {firmware_dir}/{rel}/"))
        else:
            out.append(("error", f"firmware/{rel}/ is a split release without a combined sip.ld, and polygen's "
                                 f"catalog has no part number for the {model.name}: set "
                                 f"models.{model.key}.part_number, or unpack the combined release into "
                                 f"{firmware_dir}/{rel}/"))
    if model.dialect == "sip3":
        missing = [n for n in LEGACY_FILES if n not in names and n not in said]
        if missing:
            files = " and ".join(f"firmware/{rel}/{n}" for n in missing)
            out.append(("error", f"{files} not found: {model.name} phones run SIP {rel}, which has no built-in "
                                 f"defaults (Polycom's sip.cfg and phone1.cfg hold them); unpack the {rel} "
                                 f"release into {firmware_dir}/{rel}/"))
    return out
