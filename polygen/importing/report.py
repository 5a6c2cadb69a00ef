"""What an import did, for people (text) and programs (JSON)."""

from __future__ import annotations

import json

from polygen.importing.commit import Written
from polygen.importing.infer import Inferred

DESTINATIONS = {
    "built in": "built in: polygen writes the same",
    "firmware default": "left out: the firmware's default",
    "release file": "the release's own files, which the build links",
}


def _phones(macs: list[str]) -> str:
    return ", ".join(macs) if len(macs) <= 2 else f"{len(macs)} phones"


def written_lines(written: Written | None) -> list[str]:
    if written is None:
        return ["  (dry run: nothing written)"]
    lines = [f"  {path}: {what}" for path, what in written.files]
    if written.gitignore is not None:
        lines.append(f"  {written.gitignore}: lists the secrets file, which must stay out of git")
    return lines


def tree_text(inferred: Inferred, written: Written | None, into) -> str:
    inv = inferred.inventory
    out = [f"imported {len(inv.phones)} phones, {len(inv.extensions)} extensions, "
           f"{inferred.draft.count('contacts')} contacts into {into}"]
    out += written_lines(written)
    out.append("parameters not mapped onto a first-class key, and where they went:")
    if not inferred.placements:
        out.append("  (none)")
    for p in inferred.placements:
        srcs = [s or "unset before: pinned to the firmware default" for s in p.sources]
        if len(srcs) > 3:
            srcs = srcs[:2] + [f"{len(srcs) - 2} more files"]
        dest = DESTINATIONS.get(p.destination, p.destination)
        out.append(f"  {p.name} = {json.dumps(p.shown_value(), ensure_ascii=False)} -> {dest} "
                   f"({_phones(p.phones)}; from {', '.join(srcs)})")
    out.append("files not used:")
    if not inferred.unused:
        out.append("  (none)")
    out += [f"  {path}: {why}" for path, why in inferred.unused]
    return "\n".join(out)


def tree_json(inferred: Inferred, written: Written | None, into) -> str:
    inv = inferred.inventory
    doc = {
        "into": str(into),
        "written": [{"path": str(p), "what": w} for p, w in written.files] if written else [],
        "phones": len(inv.phones), "extensions": len(inv.extensions),
        "contacts": inferred.draft.count("contacts"),
        "parameters": [p.as_dict() for p in inferred.placements],
        "unused_files": [{"path": path, "reason": why} for path, why in inferred.unused],
        "warnings": [p.as_dict() for p in inferred.problems if p.severity == "warning"],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)
