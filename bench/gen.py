"""Synthetic inventories shaped like a real repository: ``generate(dest, phones, seed=0)``.

Layout written under ``dest``:

* ``site.yaml``: the one ``site:`` section;
* ``sites/b<NN>/floor-<NN>.yaml``: ~500 phones per file with their extensions (1-3 lines each),
  20 floors per building.

Every extension is listed in the directory (the default), secrets are inline, the model mix covers
SoundPoint IP 330/331/601 (UC and SIP 3.1), SoundStation IP 4000 and VVX 410/450/500, a few phones
carry their own settings, one building is in another time zone. The output depends only on
(phones, seed). Text is produced with string formatting, not a YAML emitter: 100k phones take a
second or two.

``change_phone`` and ``rename_extension`` make the edits the bench measures, in place, and say
what they touched.

    python -m bench.gen DEST PHONES [SEED]
"""

from __future__ import annotations

import random
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

PHONES_PER_FILE = 500
FLOORS_PER_BUILDING = 20
EXT_BASE = 1_000_000  # 7-digit extensions: room for 3 lines x 100k phones and more
OUIS = ("0004f2", "64167f", "482567")

# (catalog key as an admin would write it, registrations it supports, weight)
MODELS = (
    ("VVX 410", 12, 30),
    ("VVX 450", 12, 20),
    ("VVX 500", 12, 10),
    ("IP331", 2, 14),
    ("IP330", 2, 10),  # UC 3.3.5
    ("IP4000", 1, 6),  # SIP 3.1.8, one line
    ("IP601", 6, 5),  # SIP 3.1.8
    ("SPIP_335", 2, 5),  # a UA-token spelling of the IP 335
)

FIRST = ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken",
         "Dennis", "Radia", "Niklaus", "Tony", "Leslie", "Renée", "José", "Zoë", "Øystein", "Chloé",
         "Wei", "Yuki", "Priya", "Olu", "Fatima", "Mateo", "Sven", "Ingrid", "Hugo", "Ines")
LAST = ("Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Hamilton",
        "Thompson", "Ritchie", "Perlman", "Wirth", "Hoare", "Lamport", "O'Brien", "García", "Müller",
        "Nakamura", "Sharma", "Okafor", "Haddad", "Lindqvist", "Dubois", "Rossi", "Kowalski",
        "Smith & Sons", "Nguyen", "Johansson", "<Temp>")
SETTINGS = ('up.backlight.idleIntensity: "1"', 'up.headsetMode: "1"', 'up.screenSaver.enabled: "1"')

SITE_YAML = """\
# The site: exactly one `site:` in the whole inventory (synthetic, bench/gen.py).
site:
  name: Bench Corp
  provisioning_url: http://prov.bench.example/
  sip_server: pbx.bench.example
  timezone: America/New_York
  ntp_server: pool.ntp.org
  polling: {mode: abs, time: "01:00"}
  settings:
    up.headsetMode: "0"
"""


@dataclass(frozen=True)
class Generated:
    dest: Path
    phones: int
    extensions: int
    files: list[Path]  # every inventory file written, site.yaml first


def _mac(k: int, seed: int) -> str:
    """The k-th MAC: an odd multiplier mod 2**24 is a bijection, so MACs never repeat."""
    low = (k * 0x9E3779 + seed * 0x1F1F1F + 1) % (1 << 24)
    return OUIS[k % 3] + f"{low:06x}"


def _spell(mac: str, k: int) -> str:
    """Admins write MACs in different ways; the loader normalises them."""
    if k % 7 == 0:
        return "-".join(mac[i:i + 2] for i in range(0, 12, 2)).upper()
    if k % 11 == 0:
        return f"{mac[:4]}.{mac[4:8]}.{mac[8:]}"
    return ":".join(mac[i:i + 2] for i in range(0, 12, 2))


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def generate(dest: Path, phones: int, seed: int = 0) -> Generated:
    """Write an inventory of ``phones`` phones into ``dest`` (emptied first)."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    rng = random.Random(seed)
    names = [m for m, _, _ in MODELS]
    max_lines = {m: n for m, n, _ in MODELS}
    weights = [w for _, _, w in MODELS]
    site = dest / "site.yaml"
    site.write_text(SITE_YAML, encoding="utf-8")
    files = [site]
    ext_n = 0
    for f_index, start in enumerate(range(0, phones, PHONES_PER_FILE)):
        building, floor = divmod(f_index, FLOORS_PER_BUILDING)
        count = min(PHONES_PER_FILE, phones - start)
        models = rng.choices(names, weights, k=count)
        exts, phs = [], []
        for i in range(count):
            k = start + i
            model = models[i]
            n_lines = min(max_lines[model], rng.choice((1, 1, 1, 2, 2, 3)))
            lines = []
            for _ in range(n_lines):
                ext = str(EXT_BASE + ext_n)
                ext_n += 1
                lines.append(ext)
                first, last = rng.choice(FIRST), rng.choice(LAST)
                exts.append(f"  - ext: \"{ext}\"\n    first_name: {_q(first)}\n    last_name: {_q(last)}\n"
                            f"    secret: \"{rng.getrandbits(64):016x}\"\n")
            mac = _mac(k, seed)
            entry = (f"  - mac: {_spell(mac, k)}\n    model: {model}\n"
                     f"    lines: [{', '.join(_q(x) for x in lines)}]\n"
                     f"    description: B{building:02d} floor {floor:02d} desk {i:03d}\n")
            if i % 20 == 7:  # never the first phone of a file: change_phone edits that one
                entry += f"    settings: {{{SETTINGS[k % len(SETTINGS)]}}}\n"
            if building % 5 == 3:
                entry += "    timezone: America/Chicago\n"
            phs.append(entry)
        path = dest / "sites" / f"b{building:02d}" / f"floor-{floor:02d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# building {building:02d}, floor {floor:02d}: {count} phones (bench/gen.py, seed {seed})\n"
                        "extensions:\n" + "".join(exts) + "phones:\n" + "".join(phs), encoding="utf-8")
        files.append(path)
    return Generated(dest, phones, ext_n, files)


# ------------------------------------------------------------------ edits the bench measures
_PHONE_RE = re.compile(r"^  - mac: (\S+)\n(?:    .*\n)*?    lines: \[([^\]]*)\]\n", re.M)


def _middle_file(dest: Path) -> Path:
    floors = sorted((Path(dest) / "sites").rglob("floor-*.yaml"))
    return floors[len(floors) // 2]


def _norm(mac: str) -> str:
    return re.sub(r"[:\-.]", "", mac).lower()


_CHANGED = '    settings: {up.backlight.idleIntensity: "'


def change_phone(dest: Path) -> str:
    """Give the first phone of the middle file a setting of its own (or change it when called
    again); returns its MAC."""
    path = _middle_file(dest)
    text = path.read_text(encoding="utf-8")
    m = _PHONE_RE.search(text)
    at = m.end(0)
    if text.startswith(_CHANGED, at):  # changed before: 2 -> 3 -> 4 ...
        v = at + len(_CHANGED)
        end = text.index('"', v)
        text = text[:v] + str(int(text[v:end]) + 1) + text[end:]
    else:
        text = text[:at] + _CHANGED + '2"}\n' + text[at:]
    path.write_text(text, encoding="utf-8")
    return _norm(m.group(1))


def rename_extension(dest: Path) -> tuple[str, str]:
    """Change the last name of the first line of the middle file's last phone; returns (ext, MAC).

    Each extension is on exactly one phone, so this changes the directory and that phone only
    (its reg.1.displayName).
    """
    path = _middle_file(dest)
    text = path.read_text(encoding="utf-8")
    last = list(_PHONE_RE.finditer(text))[-1]
    ext = last.group(2).split(",")[0].strip().strip('"')
    m = re.search(rf'^  - ext: "{ext}"\n    first_name: .*\n    last_name: "(.*)"\n', text, re.M)
    text = text[:m.start(1)] + m.group(1) + "-Renamed" + text[m.end(1):]
    path.write_text(text, encoding="utf-8")
    return ext, _norm(last.group(1))


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: python -m bench.gen DEST PHONES [SEED]")
    g = generate(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) == 4 else 0)
    print(f"{g.dest}: {g.phones} phones, {g.extensions} extensions in {len(g.files)} files")
