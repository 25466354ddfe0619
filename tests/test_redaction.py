"""Masking: every spelling of a secret, before any cut, and nothing that is not a secret."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest
from secret_search import HOSTILE_KEY, HOSTILE_REFRESH, HOSTILE_SECRET, basic, leaks, spellings

from gexbot.redaction import MASK, MIN_SECRET_CHARS, Masker, basic_credentials, too_short

HOSTILE = (HOSTILE_KEY, HOSTILE_SECRET, HOSTILE_REFRESH)


def _masker() -> Masker:
    return Masker([*HOSTILE, basic_credentials(HOSTILE_KEY, HOSTILE_SECRET)])


@pytest.mark.parametrize("secret", HOSTILE)
def test_every_spelling_of_a_hostile_secret_is_masked(secret: str) -> None:
    masker = _masker()
    for form in spellings(secret):
        text = f"before {form} after"
        masked = masker.mask(text)
        assert masked.startswith("before ***")
        assert leaks(masked, HOSTILE) == [], form


def test_spellings_of_spellings_are_masked() -> None:
    masker = _masker()
    for secret in HOSTILE:
        for text in (
            json.dumps(json.dumps({"token": secret})),  # JSON inside JSON, as Schwab nests it
            json.dumps(quote(secret, safe="")),
            quote(json.dumps(secret)),
            quote_plus(quote_plus(secret)),
            repr(json.dumps(secret)),
            json.dumps(secret, ensure_ascii=True),
        ):
            assert leaks(masker.mask(text), HOSTILE) == [], text


def test_the_basic_value_and_each_part_in_base64_are_masked() -> None:
    masker = _masker()
    header = f"Authorization: Basic {basic(HOSTILE_KEY, HOSTILE_SECRET)}"
    assert masker.mask(header) == f"Authorization: Basic {MASK}"
    # Either part inside any base64 text, at any of the three byte alignments.
    for secret in HOSTILE:
        for prefix in range(6):
            blob = base64.b64encode(b"p" * prefix + secret.encode() + b"-tail").decode()
            masked = masker.mask(blob)
            assert MASK in masked
            kept = len(masked) - len(MASK)
            assert kept <= len(blob) - (4 * len(secret.encode()) // 3 - 2)
            urlsafe = blob.replace("+", "-").replace("/", "_")
            assert MASK in masker.mask(urlsafe)


def test_text_is_masked_before_it_is_cut() -> None:
    masker = _masker()
    for secret in HOSTILE:
        for cut in range(5, 60):
            text = "x" * (cut - 3) + f" {secret} and more after it"
            clipped = masker.clip(text, cut)
            assert len(clipped) <= cut
            assert leaks(clipped, HOSTILE) == [], (cut, clipped)
    assert masker.clip("a\n  b\tc", 100) == "a b c"


def test_decoded_json_is_masked_keys_too_and_left_alone_when_clean() -> None:
    masker = _masker()
    clean = {"status": "SUCCESS", "numbers": [1, 2.5, None, True]}
    assert masker.mask_json(clean) is clean
    echoed = {"errors": [{"detail": f"bad {HOSTILE_SECRET}"}], HOSTILE_KEY: {"n": 1}}
    masked = masker.mask_json(echoed)
    assert masked == {"errors": [{"detail": "bad ***"}], "***": {"n": 1}}
    assert leaks(json.dumps(masked), HOSTILE) == []
    nested: object = HOSTILE_KEY
    for _ in range(100_000):
        nested = [nested]
    assert masker.mask_json(nested) is None  # too deep to search: dropped, never passed on


def test_a_secret_too_short_to_be_real_is_refused() -> None:
    assert MIN_SECRET_CHARS == 12
    assert too_short("x" * 11)
    assert not too_short("x" * 12)
    assert not too_short("")
    masker = Masker(["", None])
    assert not masker.active
    assert masker.mask("nothing to hide") == "nothing to hide"
    with pytest.raises(ValueError, match="11 characters is too short"):
        masker.add("x" * 11)


def test_ordinary_text_is_untouched() -> None:
    masker = _masker()
    line = 'quotes: HTTP 400 (Bad Request: {"symbol": "$SPX", "price": 6800.25})'
    assert masker.mask(line) == line
