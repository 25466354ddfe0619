"""Schwab's OAuth token endpoint: the two grants, and what its answers mean.

`TokenEndpoint` speaks the authorization-code grant (`python -m gexbot.auth`) and the
refresh-token grant (`AccessTokens`, oauth.py) with HTTP Basic app credentials. A 400/401 (or a
4xx page where JSON was expected) is a `TokenRefused`, anything that may heal by itself
(timeouts, 5xx, nonsense) a `TokenUnavailable`. Error texts are masked before they are cut, as
Schwab's may quote what was sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import requests

from gexbot.documents import load_answer
from gexbot.market.refusal import may_pass
from gexbot.redaction import MIN_SECRET_CHARS, Masker, basic_credentials, too_short

TOKEN_PATH = "/v1/oauth/token"  # noqa: S105 (a URL path)
AUTHORIZE_PATH = "/v1/oauth/authorize"
DEFAULT_ACCESS_LIFETIME_S = 1800


class TokenUnavailable(Exception):
    """The token endpoint could not be reached or answered nonsense; it may heal by itself."""


class TokenRefused(Exception):
    """The token endpoint refused the grant (HTTP 400/401, or a 4xx page instead of JSON).

    `page` is True when no JSON came back (an "Access Denied" page), which `may_pass`
    counts among the refusals Schwab has taken back (see refusal.py).
    """

    def __init__(
        self,
        status: int,
        error: str | None,
        description: str | None,
        page: bool = False,
        passing: bool | None = None,
    ) -> None:
        words = f"HTTP {status}"
        if error:
            words += f" {error}"
        if description:
            words += f": {description}"
        if page:
            words += " (a page, not JSON)"
        super().__init__(words)
        self.status = status
        self.error = error
        self.description = description
        self.page = page
        self._passing = passing

    @property
    def may_pass(self) -> bool:
        """True for a refusal of a kind Schwab has been seen to take back by itself (judged
        on the whole answer when given as `passing`, since the texts kept here are cut)."""
        if self._passing is not None:
            return self._passing
        return may_pass(self.error, self.description, self.page)

    @property
    def bad_client(self) -> bool:
        """True when Schwab refused the app key/secret rather than the token or code."""
        about_token = "token" in (self.description or "").lower()
        return self.status == 401 and self.error == "invalid_client" and not about_token


@dataclass(frozen=True, slots=True)
class Grant:
    """A successful token request: an access token, its lifetime, maybe a refresh token."""

    access_token: str
    expires_in_s: int
    refresh_token: str | None


def _short(text: object, masker: Masker, limit: int = 100) -> str | None:
    """An error text masked, bracketed token digests removed, on one line, cut to `limit`.

    Masked first: a cut through a secret, or a bracket inside one, would leave a piece of it
    that no longer matches.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    return masker.clip(re.sub(r"\[[^\]]*\]", "", masker.mask(text)), limit) or None


class TokenEndpoint:
    """`POST {base}/v1/oauth/token` with HTTP Basic app credentials.

    `masker` masks Schwab's error texts (which may quote what was sent) before they are cut and
    put in an exception; it is given the app credentials here and the tokens by their holders.
    """

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        app_key: str,
        app_secret: str,
        timeout: tuple[float, float],
        masker: Masker | None = None,
    ) -> None:
        self.url = base_url + TOKEN_PATH
        self._session = session
        self._auth = (app_key, app_secret)
        self._timeout = timeout
        self.masker = masker if masker is not None else Masker()
        for secret in (app_key, app_secret, basic_credentials(app_key, app_secret)):
            self.masker.add(secret)

    def refresh(self, refresh_token: str, headers: dict[str, str] | None = None) -> Grant:
        """A new access token from the refresh token."""
        self.masker.add(refresh_token)
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._post(form, headers or {})

    def exchange_code(self, code: str, redirect_uri: str) -> Grant:
        """Tokens from a browser login's authorization code (single-use, short-lived)."""
        self.masker.add(code)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return self._post(form, {})

    def _post(self, form: dict[str, str], headers: dict[str, str]) -> Grant:
        try:
            answer = self._session.post(
                self.url,
                data=form,
                auth=self._auth,
                headers={"Accept": "application/json", **headers},
                timeout=self._timeout,
            )
        except requests.Timeout:
            raise TokenUnavailable(f"timeout after {self._timeout[1]:g} s") from None
        except requests.RequestException as exc:
            raise TokenUnavailable(f"connection error ({type(exc).__name__})") from None
        body = _json(answer)
        status = answer.status_code
        page = not isinstance(body, dict)
        if status in (400, 401) or (page and 400 <= status <= 499 and status != 429):
            error = None if page else body.get("error")
            described = None if page else body.get("error_description")
            raise TokenRefused(
                status,
                _short(error, self.masker, 60),
                _short(described, self.masker),
                page,
                may_pass(_text(error), _text(described), page),
            )
        if answer.status_code != 200:
            raise TokenUnavailable(f"HTTP {answer.status_code}")
        if not isinstance(body, dict):
            raise TokenUnavailable("HTTP 200 without a JSON object")
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise TokenUnavailable("HTTP 200 without an access_token")
        lifetime = body.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime <= 0:
            lifetime = DEFAULT_ACCESS_LIFETIME_S
        refresh = body.get("refresh_token")
        refresh = refresh if isinstance(refresh, str) and refresh else None
        if too_short(access) or (refresh is not None and too_short(refresh)):
            raise TokenUnavailable(f"HTTP 200 with a token of under {MIN_SECRET_CHARS} characters")
        return Grant(access, lifetime, refresh)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _json(answer: requests.Response) -> Any:
    try:
        return load_answer(answer.content)
    except ValueError:
        return None
