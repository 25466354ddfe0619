"""Search what a run left behind for secrets, in every spelling, and for any piece of one.

Deliberately a second reading of which spellings exist, written apart from gexbot.redaction:
a spelling the code forgets is then caught here rather than agreed with.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus

RUN = 5
"""Any run of this many consecutive characters of a secret counts as a leak."""

# Fake secrets made to be hard to mask: quotes, a backslash, %, +, /, = and regex characters.
# Their letters are chosen so that no run of 5 characters is likely in ordinary output.
HOSTILE_KEY = 'Kq7"Zx\\Wv%2Bp+Jm/Ty=Rs.*Nd(Lf)'
HOSTILE_SECRET = "Gh$9'Yt^Vb[Qw]+Xe{2}|Pz?Uc&Mo=="  # noqa: S105 (a fake)
HOSTILE_REFRESH = 'Rf-Jx"Tq\\Hv%Kp+Wz/Lb=Cn.Dm*Sy?Ez(Fa)Gk[Ib]'
HOSTILE_WEBHOOK_PATH = "/api/webhooks/97531/Wq-Zr.Hx_Vn+Yk"


def basic(key: str, secret: str) -> str:
    """The HTTP Basic value of a key and secret."""
    return base64.b64encode(f"{key}:{secret}".encode()).decode()


def _escaped(text: str) -> list[str]:
    url = [quote(text, safe=""), quote(text), quote_plus(text, safe=""), quote_plus(text)]
    lower = [re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), form) for form in url]
    return [*url, *lower, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1],
            repr(text)[1:-1], html.escape(text)]


def spellings(secret: str) -> set[str]:
    """The secret, each escaping of it and of each escaping, and its base64 (whole)."""
    forms = {secret, base64.b64encode(secret.encode()).decode().rstrip("=")}
    for once in _escaped(secret):
        forms.add(once)
        forms.update(_escaped(once))
    return forms


def runs(secret: str, length: int = RUN) -> set[str]:
    """Every run of `length` consecutive characters of `secret`."""
    return {secret[i : i + length] for i in range(len(secret) - length + 1)}


def leaks(
    data: str | bytes, secrets: Iterable[str], *, pieces: bool = True, run: int = RUN
) -> list[str]:
    """What of `secrets` is in `data`: a whole spelling, or (with `pieces`, for secrets made
    without ordinary words, like the hostile ones) a run of `run` of a secret's characters."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    found = []
    for secret in secrets:
        found += [f"spelling {form!r}" for form in spellings(secret) if form in text]
        if pieces:
            found += [f"run {piece!r} of a secret" for piece in runs(secret, run) if piece in text]
    return found


def files_under(*folders: Path) -> dict[Path, bytes]:
    """Every file's bytes under `folders` (gzip members decompressed, so recordings are read)."""
    seen: dict[Path, bytes] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                if path.suffix == ".gz":
                    data = gzip.decompress(data)
                seen[path] = data
    return seen
