"""Typed, frozen settings: the preset from YAML and the secrets from the environment.

A preset holds every number of the strategy and of the variant, so that the engine carries no
literals and a user can try a variant of the strategy by editing a file. Validation is strict
(pydantic): an unknown key, a wrong type or an out-of-range value is a one-line `ConfigError`
naming the file and the dotted key, because a preset typo that silently falls back to a default
would forward-test a different strategy for weeks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gexbot.errors import ConfigError

PRESET_DIR = Path(__file__).parent / "presets"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

Probability = Annotated[float, Field(gt=0.0, lt=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
Bucket = Literal["REVERSION", "MOMENTUM"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ChainSettings(_Section):
    """Which option chain is requested each minute."""

    strike_count: int = Field(ge=2, le=500)
    expirations_ahead: int = Field(ge=0, le=30)
    """Sessions after today whose expirations are requested (0: today's expirations only)."""
    contract_multiplier: PositiveFloat


class BandSettings(_Section):
    window: int = Field(ge=2, le=1000)
    min_live_prices: int = Field(ge=2, le=1000)
    """Below this many prices in the live buffer, bands use the intraday 1-minute closes."""
    width_sigma: PositiveFloat


class HurstSettings(_Section):
    min_lag: int = Field(ge=1, le=1000)
    max_lag: int = Field(ge=2, le=1000)
    threshold: float = Field(gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _lags_ordered(self) -> HurstSettings:
        if self.max_lag <= self.min_lag:
            raise ValueError("max_lag must be greater than min_lag")
        return self


class OfiSettings(_Section):
    window: int = Field(ge=1, le=1000)
    short_below: PositiveFloat
    long_above: PositiveFloat


class HmmSettings(_Section):
    returns: int = Field(ge=2, le=10_000)
    min_variance_ratio: float = Field(ge=1.0)
    train_sessions: int = Field(ge=1, le=60)


class SizingSettings(_Section):
    bucket: Bucket
    win_rates: dict[Bucket, Probability]
    kelly_fraction: float = Field(gt=0.0, le=1.0)
    max_fraction: float = Field(gt=0.0, le=1.0)
    slippage_points: float = Field(ge=0.0)

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
    threshold: float = Field(ge=0.0, lt=1.0)
    """Relative session-open gap (0.005 = 0.5%) above which new entries are suspended."""
    suspend_until_prices: int = Field(ge=0, le=10_000)


class StrategySettings(_Section):
    price_buffer: int = Field(ge=2, le=100_000)
    bands: BandSettings
    stop_sigma: PositiveFloat
    hurst: HurstSettings
    ofi: OfiSettings
    hmm: HmmSettings
    sizing: SizingSettings
    cooldown_minutes: int = Field(ge=0, le=1440)
    gap: GapSettings
    flatten_minutes_before_close: int = Field(ge=0, le=390)
    starting_balance: PositiveFloat

    @model_validator(mode="after")
    def _buffers_fit(self) -> StrategySettings:
        if self.bands.window > self.price_buffer:
            raise ValueError("bands.window must not exceed price_buffer")
        if self.hurst.max_lag + 2 > self.price_buffer:
            raise ValueError("hurst.max_lag + 2 must not exceed price_buffer")
        return self


class DataSettings(_Section):
    """When market data that parses is still too implausible to trade on (skip the minute)."""

    min_usable_per_side: float = Field(ge=0.0, le=1.0)
    """Share of the calls, and of the puts, that must have a usable gamma and open interest:
    with one side mostly sentinels, the sum of the other side alone would flip the GEX sign."""
    max_move_from_previous_close: float = Field(gt=0.0, le=10.0)
    """An index price further than this from the previous close (0.25 = 25%, beyond what the
    market-wide circuit breakers allow in a day) is a broken quote."""
    bars_expected_after_minutes: int = Field(ge=1, le=390)
    """From this many minutes after the open, today's 1-minute history must hold bars."""


class SimSettings(_Section):
    """Parameters of the simulated market for this variant (not of the strategy)."""

    base_price: PositiveFloat
    strike_interval: PositiveFloat
    proxy_ratio: PositiveFloat
    """Index points per proxy-ETF dollar (about 10 for $SPX/SPY, 41 for $NDX/QQQ)."""
    daily_vol: PositiveFloat
    """Typical daily return standard deviation (0.01 = 1%)."""


class Preset(_Section):
    """One variant: its symbols, its data requests, its strategy numbers and its sim market."""

    variant: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    symbol: str = Field(min_length=1)
    proxy: str = Field(min_length=1)
    calendar: str = Field(min_length=1)
    model_path: str = Field(min_length=1)
    chain: ChainSettings
    data: DataSettings
    strategy: StrategySettings
    sim: SimSettings

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
    """The shipped preset file of a variant."""
    return PRESET_DIR / f"{variant}.yaml"


def load_preset(path: str | Path) -> Preset:
    """Read and validate a preset file; any problem is one `ConfigError` naming file and key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: preset file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read preset ({exc.strerror})") from None
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
    """The preset for `variant`: the user's file when given, else the shipped one."""
    preset = load_preset(preset_file if preset_file is not None else preset_path(variant))
    if preset_file is None and preset.variant != variant:
        raise ConfigError(f"{preset_path(variant)}: variant is {preset.variant!r}, not {variant!r}")
    return preset


def _first_problem(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] != "missing":
        message = f"{message} (got {first.get('input')!r})"
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{key}: {message}{more}"


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
        """Every secret that is set, for the log redactor."""
        return tuple(
            value
            for value in (
                self.app_key,
                self.app_secret,
                self.refresh_token,
                self.discord_webhook_url,
            )
            if value
        )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Secrets:
        """Read the secrets from `env` (default: the process environment, after `.env`)."""
        source: Any = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = source.get(name, "").strip()
            return value or None

        return cls(
            app_key=get("SCHWAB_APP_KEY"),
            app_secret=get("SCHWAB_APP_SECRET"),
            refresh_token=get("SCHWAB_REFRESH_TOKEN"),
            discord_webhook_url=get("DISCORD_WEBHOOK_URL"),
        )
