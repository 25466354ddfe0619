"""Masking secrets in text, in every spelling a secret travels in.

Pure (no logging, no I/O), so that both layers use it: the log filter (shell/logs.py), the
recorder (market/recording.py), the Schwab transport and the database's free text all mask with
a `Masker`, and one list of spellings holds everywhere.

A secret reaches text in more spellings than its own: URL-encoded in a query string or a form
body (upper- or lower-case hex escapes, ``+`` for a space), JSON-escaped in a recording or a JSON
log line (``"`` as ``\\"``, ``\\`` as ``\\\\``, non-ASCII escaped or not), Python-escaped in a
repr, HTML-escaped in an error page, and base64-encoded in an HTTP Basic authorization value
(``base64(key:secret)``), where each part sits at one of three byte alignments. Each spelling,
and each spelling of a spelling (a JSON-escaped URL-encoded secret, JSON inside JSON), is masked.

Text is masked before it is cut to a length: a cut through a secret leaves a prefix that no
spelling matches any more. `Masker.clip` does both, in that order.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

MASK = "***"
MIN_SECRET_CHARS = 12
"""The shortest value accepted as a secret. Schwab's shortest credential, the app secret, has 16
characters (app keys 32, access and refresh tokens about 100, a Discord webhook URL over 100), so
anything under 12 is a placeholder or a typo; and masking a value that short would blank ordinary
words and numbers in every line (a one-character secret masks that character everywhere)."""


def too_short(value: str) -> bool:
    """True when `value` is set but shorter than any real secret (see `MIN_SECRET_CHARS`)."""
    return 0 < len(value) < MIN_SECRET_CHARS


def basic_credentials(user: str, password: str) -> str:
    """The value of an HTTP Basic ``Authorization`` header: base64 of ``user:password``."""
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def _escapes(text: str) -> set[str]:
    """`text` under each escaping it may meet once: URL, JSON, Python repr, HTML.

    A repr escapes ``'`` only when the text holds both kinds of quote, which the text around a
    secret may decide, so both of its spellings are listed.
    """
    url = {quote(text, safe=""), quote(text), quote_plus(text, safe=""), quote_plus(text)}
    url |= {_lower_hex(form) for form in url}
    return url | {
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        repr(text)[1:-1],
        repr(text + '"')[1:-2],
        html.escape(text),
    }


def _base64_cores(data: bytes) -> set[str]:
    """What `data` looks like inside any base64 text, at each of the three byte alignments.

    Only the characters that `data` alone decides are kept (the edges also carry bits of the
    neighbouring bytes), in the standard and the URL-safe alphabet.
    """
    cores = set()
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + data).decode("ascii")
        first = -(-8 * shift // 6)
        last = 8 * (shift + len(data)) // 6
        core = encoded[first:last]
        cores |= {core, core.replace("+", "-").replace("/", "_")}
    return cores


def spellings(secret: str) -> set[str]:
    """Every spelling of `secret` that is masked (see the module text)."""
    once = _escapes(secret)
    forms = {secret} | once
    for form in once:
        forms |= _escapes(form)
    forms |= _base64_cores(secret.encode())
    parts = urlsplit(secret)
    if parts.scheme and parts.netloc and len(parts.path) > 1:
        # HTTP libraries log the path of a request without its host: a webhook URL's path is
        # as secret as the whole URL.
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        forms |= {path} | _escapes(path)
    return {form for form in forms if form}


def _trie_pattern(words: Iterable[str]) -> str:
    """One regular expression matching any of `words`, the longest where several start alike.

    The words are merged into a prefix tree, so the engine follows one path per character
    instead of trying each of a few hundred spellings in turn (about 4x faster on a chain).
    Greedy optional groups make the longest word win, so a secret holding another is masked
    whole.
    """
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        run = ""
        while len(node) == 1 and "" not in node:  # a stretch without a fork: no recursion
            (char, node), = node.items()
            run += re.escape(char)
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return run
        group = "(?:" + "|".join(branches) + ")"
        return run + (group + "?" if "" in node else group)

    return build(root)


class Masker:
    """Replaces every registered secret, in every spelling, with ``***``; thread-safe.

    Secrets are registered as they become known (a fresh access token at run time). A value
    shorter than `MIN_SECRET_CHARS` is refused with ValueError: callers check lengths where the
    value enters (configuration, a token answer) and say so in their own words.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._lock = threading.Lock()
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Register one more secret (and its spellings); empty values are ignored."""
        if not secret:
            return
        if too_short(secret):
            raise ValueError(f"a secret of {len(secret)} characters is too short to mask")
        with self._lock:
            forms = spellings(secret)
            if forms <= self._forms:
                return
            self._forms |= forms
            self._pattern = re.compile(_trie_pattern(self._forms))

    @property
    def active(self) -> bool:
        """True once a secret is registered."""
        return self._pattern is not None

    def mask(self, text: str) -> str:
        """`text` with every registered secret replaced by ``***``."""
        pattern = self._pattern
        return text if pattern is None else pattern.sub(MASK, text)

    def clip(self, text: str, limit: int) -> str:
        """`text` masked, then on one line and cut to `limit` characters (with ``...``)."""
        flat = " ".join(self.mask(text).split())
        return flat if len(flat) <= limit else flat[: max(limit - 3, 0)] + "..."

    def mask_json(self, value: Any) -> Any:
        """A decoded JSON value with every string in it (keys too) masked.

        The value itself is returned when no secret is in it, which one search of its text
        tells (each secret's JSON-escaped spelling is among those searched).
        """
        pattern = self._pattern
        if pattern is None or isinstance(value, bool | int | float) or value is None:
            return value
        try:
            if pattern.search(json.dumps(value, ensure_ascii=False)) is None:
                return value
            return _walk(value, self.mask)
        except (TypeError, ValueError, RecursionError):
            return None  # not JSON after all, or nested too deep to search: dropped, not leaked


def _walk(value: Any, mask: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {mask(str(key)): _walk(item, mask) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(item, mask) for item in value]
    return value
