"""Typed, frozen settings: the preset from YAML and the secrets from the environment.

A preset holds every number of the strategy and of the variant, so that the engine carries no
literals and a user can try a variant of the strategy by editing a file. Validation is strict
(pydantic): an unknown key, a key given twice, a wrong type, a non-finite or out-of-range value,
or values that together make a rule meaningless are a one-line `ConfigError` naming the file and
the dotted key, because a preset typo that silently falls back to a default would forward-test a
different strategy for weeks. Every number has an upper bound too: an infinite or absurd
balance, multiplier or simulated-market parameter trades on in NaN or allocates without end.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from gexbot.documents import DocumentError, NotAFileError, load_yaml, read_text
from gexbot.errors import ConfigError
from gexbot.redaction import MIN_SECRET_CHARS, basic_credentials, too_short
from gexbot.wording import counted

PRESET_DIR = Path(__file__).parent / "presets"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
PRESET_LIMIT = 1 << 20
"""Bytes of the largest preset file read (the shipped ones are under 3 KiB)."""
SESSION_MINUTES = 390
"""Minutes of a regular session: a count of today's minutes or bars must stay below it."""
VARIANT_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
"""A variant name: also a file name (presets, recordings, replay databases), so no path in it."""

TINY = 1e-6
"""The smallest non-zero magnitude of a preset number: below it a value means nothing (a
subnormal balance fraction or threshold is a typo, and arithmetic on it underflows)."""


def _not_tiny(value: float) -> float:
    if 0.0 < abs(value) < TINY:
        raise ValueError(f"too small to mean anything: use 0 or at least {TINY:g}")
    return value


Real = Annotated[float, AfterValidator(_not_tiny)]
"""Every float of a preset: finite (the model config), and 0 or at least `TINY` in magnitude."""
Probability = Annotated[Real, Field(gt=0.0, lt=1.0)]
Sigmas = Annotated[Real, Field(ge=0.1, le=20.0)]
"""A distance in band standard deviations."""
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
"""A name or path: no control character, which would forge a log line where it is printed."""
Bucket = Literal["REVERSION", "MOMENTUM"]
MAX_SIM_STRIKES = 20_000


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ChainSettings(_Section):
    """Which option chain is requested each minute."""

    strike_count: int = Field(ge=2, le=500)
    expirations_ahead: int = Field(ge=0, le=30)
    """Sessions after today whose expirations are requested (0: today's expirations only)."""
    contract_multiplier: Real = Field(gt=0.0, le=10_000.0)


class BandSettings(_Section):
    window: int = Field(ge=2, le=1000)
    min_live_prices: int = Field(ge=2, le=1000)
    """Below this many prices in the live buffer, bands use the intraday 1-minute closes."""
    width_sigma: Sigmas


class HurstSettings(_Section):
    min_lag: int = Field(ge=1, le=1000)
    max_lag: int = Field(ge=2, le=1000)
    threshold: Real = Field(gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _lags_ordered(self) -> HurstSettings:
        if self.max_lag <= self.min_lag:
            raise ValueError("max_lag must be greater than min_lag")
        return self


class OfiSettings(_Section):
    window: int = Field(ge=1, le=1000)
    short_below: Real = Field(gt=0.0, le=1000.0)
    long_above: Real = Field(gt=0.0, le=1000.0)


class HmmSettings(_Section):
    returns: int = Field(ge=2, lt=SESSION_MINUTES)
    """Today's one-minute returns decoded: a session never holds 390 or more."""
    min_variance_ratio: Real = Field(ge=1.0, le=1e6)
    train_sessions: int = Field(ge=1, le=60)


class SizingSettings(_Section):
    bucket: Bucket
    win_rates: dict[Bucket, Probability]
    kelly_fraction: Real = Field(gt=0.0, le=1.0)
    max_fraction: Real = Field(gt=0.0, le=1.0)
    slippage_points: Real = Field(ge=0.0, le=1000.0)

    @model_validator(mode="after")
    def _bucket_has_rate(self) -> SizingSettings:
        if self.bucket not in self.win_rates:
            raise ValueError(f"win_rates has no rate for bucket {self.bucket}")
        return self

    @property
    def win_rate(self) -> float:
        """Win rate of the bucket this preset trades."""
        return self.win_rates[self.bucket]


class GapSettings(_Section):
    threshold: Real = Field(ge=0.0, lt=1.0)
    """Relative session-open gap (0.005 = 0.5%) above which new entries are suspended."""
    suspend_until_prices: int = Field(ge=0, le=10_000)


class StrategySettings(_Section):
    price_buffer: int = Field(ge=2, le=100_000)
    bands: BandSettings
    stop_sigma: Sigmas
    hurst: HurstSettings
    ofi: OfiSettings
    hmm: HmmSettings
    sizing: SizingSettings
    cooldown_minutes: int = Field(ge=0, le=1440)
    gap: GapSettings
    flatten_minutes_before_close: int = Field(ge=0, lt=SESSION_MINUTES)
    starting_balance: Real = Field(ge=1.0, le=1e12)

    @model_validator(mode="after")
    def _buffers_fit(self) -> StrategySettings:
        # The buffer never holds more than price_buffer prices: a count above it is never
        # reached, and the rule that waits for it would wait for ever.
        if self.bands.window > self.price_buffer:
            raise ValueError("bands.window must not exceed price_buffer")
        if self.bands.min_live_prices > self.price_buffer:
            raise ValueError("bands.min_live_prices must not exceed price_buffer")
        if self.gap.suspend_until_prices > self.price_buffer:
            raise ValueError(
                "gap.suspend_until_prices must not exceed price_buffer (a gap would suspend"
                " entries for good)"
            )
        if self.hurst.max_lag + 2 > self.price_buffer:
            raise ValueError("hurst.max_lag + 2 must not exceed price_buffer")
        return self


class DataSettings(_Section):
    """When market data that parses is still too implausible to trade on (skip the minute)."""

    min_usable_per_side: Real = Field(ge=0.0, le=1.0)
    """Share of the calls, and of the puts, that must have a usable gamma and open interest:
    with one side mostly sentinels, the sum of the other side alone would flip the GEX sign."""
    max_move_from_previous_close: Real = Field(gt=0.0, le=10.0)
    """An index price further than this from the previous close (0.25 = 25%, beyond what the
    market-wide circuit breakers allow in a day) is a broken quote."""
    bars_expected_after_minutes: int = Field(ge=1, lt=SESSION_MINUTES)
    """From this many minutes after the open, today's 1-minute history must hold bars."""


class SimSettings(_Section):
    """Parameters of the simulated market for this variant (not of the strategy)."""

    base_price: Real = Field(ge=1.0, le=1e7)
    strike_interval: Real = Field(ge=0.01, le=1e5)
    proxy_ratio: Real = Field(ge=0.01, le=1000.0)
    """Index points per proxy-ETF dollar (about 10 for $SPX/SPY, 41 for $NDX/QQQ)."""
    daily_vol: Real = Field(ge=1e-4, le=0.2)
    """Typical daily return standard deviation (0.01 = 1%)."""

    @model_validator(mode="after")
    def _strikes_fit(self) -> SimSettings:
        # The market steers by net GEX over every strike from 70% to 130% of the price: one
        # array element per strike, so the ratio bounds its memory (1,360 strikes for $SPX).
        if self.base_price / self.strike_interval > MAX_SIM_STRIKES:
            raise ValueError(
                f"base_price / strike_interval must not exceed {MAX_SIM_STRIKES:,} (the"
                " simulated market keeps a value per strike)"
            )
        return self


class Preset(_Section):
    """One variant: its symbols, its data requests, its strategy numbers and its sim market."""

    variant: str = Field(pattern=VARIANT_PATTERN)
    symbol: Text
    proxy: Text
    calendar: Text
    model_path: Text
    chain: ChainSettings
    data: DataSettings
    strategy: StrategySettings
    sim: SimSettings

    @model_validator(mode="after")
    def _sim_strikes_positive(self) -> Preset:
        if self.sim.strike_interval * self.chain.strike_count > self.sim.base_price:
            raise ValueError(
                "sim.strike_interval x chain.strike_count must not exceed sim.base_price (the"
                " simulated chain would list strikes at or below zero)"
            )
        return self

    def model_file(self) -> Path:
        """Where the HMM model file is: the path as given if it exists, else under the project."""
        return resolve_path(self.model_path)


def resolve_path(path: str | Path) -> Path:
    """Resolve a relative path against the working directory, else the project checkout.

    The shipped presets name `models/hmm_<variant>.json`; running from the checkout finds it in
    the working directory, and an editable install run from elsewhere still finds the shipped file.
    """
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    in_project = PROJECT_ROOT / candidate
    return in_project if in_project.exists() else candidate


def preset_path(variant: str) -> Path:
    """The shipped preset file of a variant (a name, never a path: it may come from a file)."""
    if not re.fullmatch(VARIANT_PATTERN, variant):
        raise ConfigError(f"{variant!r} is not a variant name (lower-case letters and digits)")
    return PRESET_DIR / f"{variant}.yaml"


def load_preset(path: str | Path) -> Preset:
    """Read and validate a preset file; any problem is one `ConfigError` naming file and key."""
    path = Path(path)
    try:
        raw = load_yaml(read_text(path, PRESET_LIMIT))
    except FileNotFoundError:
        raise ConfigError(f"{path}: preset file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read preset ({exc.strerror})") from None
    except NotAFileError as problem:
        raise ConfigError(f"{path}: cannot read preset ({problem})") from None
    except DocumentError as problem:
        raise ConfigError(f"{path}: not a preset: {problem}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise ConfigError(
            f"{path}:{line} not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a preset must be a mapping of keys to values")
    try:
        return Preset.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_problem(exc)}") from None


def load_variant(variant: str, preset_file: str | Path | None = None) -> Preset:
    """The preset for `variant`: the user's file when given, else the shipped one.

    Either way the file must be of that variant: a preset of NQ run as ES would trade $NDX in
    ES's database under ES's name.
    """
    path = Path(preset_file) if preset_file is not None else preset_path(variant)
    preset = load_preset(path)
    if preset.variant != variant:
        raise ConfigError(
            f"{path}: variant is {preset.variant!r}, not {variant!r}; pass --variant"
            f" {preset.variant}, or a preset of {variant}"
        )
    return preset


def _first_problem(exc: ValidationError) -> str:
    """The one problem a user should fix first, named by its dotted key.

    A misspelt key shows up twice to pydantic: as an unknown key and as the real key missing.
    The unknown key is the one the user typed, so it is named first, with the missing key of the
    same section it most resembles as the likely meant one (which is then not counted again).
    """
    errors = sorted(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")
    first = errors[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"]
    others = len(errors) - 1
    if first["type"] == "extra_forbidden":
        message = "unknown key"
        meant = _meant(first["loc"], errors)
        if meant is not None:
            message += f" (did you mean {meant}?)"
            others -= 1
    elif first["type"] != "missing":
        message = f"{message} (got {_shown(first.get('input'))})"
    more = f" (and {counted(others, 'more problem')})" if others else ""
    return f"{key}: {message}{more}"


def _meant(location: tuple[int | str, ...], errors: list[ErrorDetails]) -> str | None:
    """The missing key of the same section spelt most like an unknown one, if any is close."""
    missing = [
        str(error["loc"][-1]) for error in errors
        if error["type"] == "missing" and error["loc"][:-1] == location[:-1]
    ]
    close = difflib.get_close_matches(str(location[-1]), missing, n=1, cutoff=0.6)
    return close[0] if close else None


def _shown(value: object, width: int = 40) -> str:
    """A value as a message quotes it: escaped, and cut short (an integer may have 400 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**width:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= width else f"{text[:width]}..."


def _masked(value: str | None) -> str:
    return "None" if value is None else "'***'"


@dataclass(frozen=True, slots=True)
class Secrets:
    """Credentials from the environment; `repr` never shows them, so a log line leaks nothing."""

    app_key: str | None = field(default=None, repr=False)
    app_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    discord_webhook_url: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={_masked(getattr(self, name))}"
            for name in ("app_key", "app_secret", "refresh_token", "discord_webhook_url")
        )
        return f"Secrets({shown})"

    def values(self) -> tuple[str, ...]:
        """Every secret that is set, for the maskers; with the app key and secret, also the
        HTTP Basic value made of both, which a server echoing its request headers may show."""
        basic = (
            basic_credentials(self.app_key, self.app_secret)
            if self.app_key and self.app_secret
            else None
        )
        return tuple(
            value
            for value in (
                self.app_key,
                self.app_secret,
                self.refresh_token,
                self.discord_webhook_url,
                basic,
            )
            if value
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Secrets:
        """Read the secrets from `env` (a command's `Environment`, or a plain dict in tests).

        A value too short to be a real credential is a `ConfigError` naming the variable (never
        the value): it would be a placeholder, and masking it would blank text everywhere.
        """

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            if too_short(value):
                raise ConfigError(
                    f"{name} has {len(value)} characters, too few for a real credential (at"
                    f" least {MIN_SECRET_CHARS}): check .env or the environment"
                )
            return value or None

        return cls(
            app_key=get("SCHWAB_APP_KEY"),
            app_secret=get("SCHWAB_APP_SECRET"),
            refresh_token=get("SCHWAB_REFRESH_TOKEN"),
            discord_webhook_url=get("DISCORD_WEBHOOK_URL"),
        )
