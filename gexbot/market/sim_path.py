"""The seeded synthetic market behind `SimMarket`: daily closes, one session's minute path,
its order flow, its option open interest and the Black-Scholes gamma that steers it.

Everything a day shows comes from a generator seeded by (seed, variant, date) alone, so a day
answers the same bytes whatever was asked before it. Only the daily closes chain the days
together: a walk from `EPOCH` whose steps are drawn first from each day's generator, so day D's
previous close is day D-1's last price exactly without building D-1's minute path.

The path is built to exercise every rule of the strategy: a 2-state volatility regime that
switches within the day, open interest skewed so that net GEX is mostly positive on "positive"
days and mostly negative on the others (and flips when spot crosses a wall), an
Ornstein-Uhlenbeck pull to a drifting level while gamma is positive and momentum while it is
negative, opening gaps on some days, and proxy bid/ask sizes that lean against sharp moves.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import numpy.typing as npt

from gexbot.core.session import TradingCalendar
from gexbot.core.types import BoolArray, FloatArray, SessionTimes
from gexbot.errors import CalendarError
from gexbot.settings import SimSettings

IntArray = npt.NDArray[np.int64]

EPOCH = date(2020, 1, 2)
"""First simulated session; its previous close is the preset's base price."""
RATE = 0.04
"""Risk-free rate of the Black-Scholes maths (the chain's `interestRate` is this in percent)."""
SECONDS_PER_YEAR = 365.0 * 86400.0
MIN_EXPIRY_SECONDS = 300.0
"""Time-to-expiry floor, so an expiring contract's gamma stays finite."""

P_VOLATILE_DAY = 0.2
P_POSITIVE_DAY = 0.68
P_GAP_DAY = 0.18
CALM_SIGMA = 0.6
VOLATILE_SIGMA = 2.0
WALK_REVERSION = 0.02
"""Daily pull of the log close back to the base price, so years of walk stay near it."""
OU_PULL = 0.4
"""Per-minute Ornstein-Uhlenbeck pull to the level while gamma is positive (half-life < 2 min)."""
FLOW_LEAN = 0.45
"""How strongly log(bid/ask) leans against the price's deviation from its recent mean."""
FLOW_BIAS = 0.15
"""Offset of log(bid/ask) that balances the upward skew of a mean of ratios (the OFI)."""

_U64 = np.uint64
_MASK = (1 << 64) - 1


def variant_key(variant: str) -> int:
    """A stable integer for a variant name (Python's hash() is salted per process)."""
    return zlib.crc32(variant.encode("utf-8"))


def day_rng(seed: int, vkey: int, day: date) -> np.random.Generator:
    """The generator of one simulated day."""
    return np.random.default_rng(np.random.SeedSequence([seed, vkey, day.toordinal()]))


def hashed_uniform(key: int, index: IntArray, salt: int) -> FloatArray:
    """Uniforms in [0, 1) that depend only on (key, index, salt): splitmix64, vectorized.

    Used where a value must be the same whichever subset of strikes or minutes is asked for.
    """
    z = np.asarray(index, dtype=np.int64).astype(_U64)
    z = z * _U64(0x9E3779B97F4A7C15) ^ _U64(key & _MASK) ^ _U64((salt * 0xD1B54A32D192ED03) & _MASK)
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    z = z ^ (z >> _U64(31))
    return (z >> _U64(11)).astype(np.float64) * 2.0**-53


@dataclass(frozen=True, slots=True)
class DayPlan:
    """The day-level draws, taken first from the day's generator in a fixed order."""

    volatile: bool
    positive: bool
    gap: float
    """Log return from the previous close to the open."""
    shock: float
    """Standard normal draw of the open-to-close return."""


def draw_plan(rng: np.random.Generator) -> DayPlan:
    """Draw a day's type, gap and close shock (always the same number of draws)."""
    u = rng.random(4)
    size = rng.uniform(0.006, 0.014)
    small = float(np.clip(rng.normal(0.0, 0.0012), -0.004, 0.004))
    gap = (size if u[3] < 0.5 else -size) if u[2] < P_GAP_DAY else small
    return DayPlan(
        volatile=bool(u[0] < P_VOLATILE_DAY),
        positive=bool(u[1] < P_POSITIVE_DAY),
        gap=float(gap),
        shock=float(rng.standard_normal()),
    )


def day_sigma(plan: DayPlan, daily_vol: float) -> float:
    """Standard deviation of the day's open-to-close log return."""
    return daily_vol * (1.5 if plan.volatile else 0.7)


@dataclass(frozen=True, slots=True)
class DayCloses:
    """A session's previous close, open and close, rounded to cents as the quotes show them."""

    previous: float
    open: float
    close: float


class DailyWalk:
    """Previous close, open and close of every session since `EPOCH`, computed lazily in order."""

    def __init__(self, calendar: TradingCalendar, seed: int, vkey: int, sim: SimSettings) -> None:
        self._calendar = calendar
        self._seed = seed
        self._vkey = vkey
        self._sim = sim
        self._next = EPOCH
        self._last_close = round(sim.base_price, 2)
        self._known: dict[date, DayCloses] = {}

    def closes(self, day: date) -> DayCloses:
        """The closes of session `day` (a session on or after `EPOCH`)."""
        if day < EPOCH:
            raise CalendarError(f"{day} is before the simulated market's first session {EPOCH}")
        while self._next <= day:
            current = self._next
            # Ask the calendar before moving on, so a date it does not know leaves the walk
            # where it was instead of silently skipping a session.
            if self._calendar.is_session(current):
                self._known[current] = self._step(current)
            self._next = current + timedelta(days=1)
        if day not in self._known:
            raise CalendarError(f"{day} is not a trading session")
        return self._known[day]

    def _step(self, day: date) -> DayCloses:
        plan = draw_plan(day_rng(self._seed, self._vkey, day))
        previous = self._last_close
        log_prev = math.log(previous)
        pull = WALK_REVERSION * (log_prev - math.log(self._sim.base_price))
        log_close = log_prev + plan.gap + day_sigma(plan, self._sim.daily_vol) * plan.shock - pull
        opened = round(previous * math.exp(plan.gap), 2)
        close = round(math.exp(log_close), 2)
        self._last_close = close
        return DayCloses(previous=previous, open=opened, close=close)


@dataclass(frozen=True, slots=True)
class OpenInterest:
    """One day's open interest per strike: smooth bumps, fixed for the whole day.

    On a positive day a wide call bump sits near the open and a put wall further below; on a
    negative day the picture is mirrored, so net GEX has the day's sign until spot crosses a wall.
    """

    key: int
    anchor: float
    scale: float
    """One day's move in points (anchor x daily_vol): the unit of the bumps' placement."""
    call_bumps: tuple[tuple[float, float, float], ...]
    put_bumps: tuple[tuple[float, float, float], ...]
    base: float
    far: float
    """Distance from the anchor (points) beyond which a strike may carry no open interest."""

    def contracts(self, strike_index: IntArray, interval: float, call: bool,
                  ahead: int) -> FloatArray:
        """Open interest (contracts) of strikes `strike_index * interval`, `ahead` sessions out."""
        strikes = strike_prices(strike_index, interval)
        away = (strikes - self.anchor) / self.scale
        lean = 1.0 / (1.0 + np.exp(-away if call else away))
        profile = self.base * (0.5 + lean)
        for center, width, height in self.call_bumps if call else self.put_bumps:
            profile = profile + height * np.exp(-0.5 * ((strikes - center) / width) ** 2)
        salt = 2 * ahead + (1 if call else 0)
        spread = (hashed_uniform(self.key, strike_index, salt) - 0.5) * math.sqrt(12.0)
        noise = np.exp(0.1 * spread)  # about 10% strike-to-strike roughness
        oi = np.round(profile * noise / (1.0 + 0.6 * ahead))
        far = np.abs(strikes - self.anchor) > self.far
        empty = far & (hashed_uniform(self.key, strike_index, 100 + salt) < 0.25)
        return np.where(empty, 0.0, oi)


def draw_open_interest(rng: np.random.Generator, plan: DayPlan, anchor: float,
                       sim: SimSettings) -> OpenInterest:
    """Place the day's open-interest bumps around the open."""
    scale = anchor * sim.daily_vol
    near = anchor + scale * rng.uniform(-0.1, 0.5)
    wall = scale * rng.uniform(0.9, 1.5)
    height = rng.uniform(2500.0, 5000.0)
    wall_height = height * rng.uniform(1.8, 2.6)
    width = scale * rng.uniform(0.9, 1.3)
    key = int(rng.integers(0, 2**63 - 1))
    if plan.positive:
        calls = ((near, width, height),)
        puts = ((anchor - wall - 0.3 * scale, 0.5 * scale, wall_height),)
    else:
        puts = ((2 * anchor - near, width, height),)
        calls = ((anchor + wall + 0.3 * scale, 0.5 * scale, wall_height),)
    return OpenInterest(key, anchor, scale, calls, puts, base=300.0,
                        far=15 * sim.strike_interval)


def strike_window(spot: float, interval: float, count: int) -> IntArray:
    """Indices of the `count` strikes around `spot`: count//2 at or below it, the rest above."""
    k0 = math.floor(spot / interval + 1e-9)
    below = count // 2
    return np.arange(k0 - below + 1, k0 + count - below + 1, dtype=np.int64)


def strike_prices(strike_index: IntArray, interval: float) -> FloatArray:
    """Strike prices of strike indices."""
    return (strike_index * interval).astype(np.float64)


def smile(iv_atm: float, spot: float, strikes: FloatArray) -> FloatArray:
    """Implied volatility per strike: a skewed parabola in one-day standard deviations."""
    z = np.log(strikes / spot) / (iv_atm / math.sqrt(252.0))
    return iv_atm * np.clip(1.0 - 0.12 * z + 0.04 * z * z, 0.6, 3.0)


def years_to(expiry: datetime, at: datetime) -> float:
    """Time to expiry in years (calendar time), floored at `MIN_EXPIRY_SECONDS`."""
    return max((expiry - at).total_seconds(), MIN_EXPIRY_SECONDS) / SECONDS_PER_YEAR


def bs_gamma(spot: float, strikes: FloatArray, years: float, iv: FloatArray) -> FloatArray:
    """Black-Scholes gamma per share per 1-point move."""
    root = iv * math.sqrt(years)
    d1 = (np.log(spot / strikes) + (RATE + 0.5 * iv * iv) * years) / root
    return np.exp(-0.5 * d1 * d1) / (math.sqrt(2.0 * math.pi) * spot * root)


@dataclass(frozen=True, slots=True, eq=False)
class DayPath:
    """One session's minutes; index m is the minute `session.open + m` (m = 0..n, n = the close).

    `prices[m]` is the index at minute m, so the bar that opened at minute m closes at
    `prices[m + 1]`; `high`, `low` and `volume` are per bar (n values). Order flow, proxy price
    and the volatility state are per minute (n + 1 values). `positive` is the sign of net GEX the
    generator steered by (diagnostics; the chain's own numbers are the truth).
    """

    session: SessionTimes
    closes: DayCloses
    plan: DayPlan
    prices: FloatArray
    high: FloatArray
    low: FloatArray
    volume: IntArray
    proxy: FloatArray
    bid_size: IntArray
    ask_size: IntArray
    iv_atm: FloatArray
    volatile: BoolArray
    positive: BoolArray
    open_interest: OpenInterest

    @property
    def minutes(self) -> int:
        """Bars in the session (390 on a regular day)."""
        return int(self.prices.shape[0]) - 1


def _regimes(rng: np.random.Generator, plan: DayPlan, count: int) -> BoolArray:
    up, down = (1 / 60, 1 / 60) if plan.volatile else (1 / 300, 1 / 25)
    draws = rng.random(count)
    state = plan.volatile
    volatile = np.empty(count, dtype=bool)
    for m in range(count):
        volatile[m] = state
        state = bool(draws[m] >= down) if state else bool(draws[m] < up)
    return volatile


def _ema(values: FloatArray, span: int) -> FloatArray:
    alpha = 2.0 / (span + 1.0)
    out = np.empty_like(values)
    level = float(values[0])
    for m, value in enumerate(values.tolist()):
        level += alpha * (value - level)
        out[m] = level
    return out


def _rolling_mean(values: FloatArray, window: int) -> FloatArray:
    sums = np.concatenate(([0.0], np.cumsum(values)))
    m = np.arange(values.shape[0])
    start = np.maximum(m + 1 - window, 0)
    return np.asarray((sums[m + 1] - sums[start]) / (m + 1 - start), dtype=np.float64)


def build_day(seed: int, vkey: int, session: SessionTimes, closes: DayCloses,
              expiries: list[datetime], sim: SimSettings, strike_count: int) -> DayPath:
    """Generate one session's minute path, order flow and open interest.

    `expiries` are the expiration instants the chain lists during the day (today's close and the
    next sessions'); the generator steers by the net GEX of that chain at each minute.
    """
    rng = day_rng(seed, vkey, session.date)
    plan = draw_plan(rng)
    n = int((session.close - session.open).total_seconds() // 60)
    oi = draw_open_interest(rng, plan, closes.open, sim)
    sigma0 = sim.daily_vol / math.sqrt(390.0)
    volatile = _regimes(rng, plan, n + 1)
    sig = sigma0 * np.where(volatile, VOLATILE_SIGMA, CALM_SIGMA)
    iv_atm = sim.daily_vol * math.sqrt(252.0) * (1.0 + 0.8 * _ema(volatile.astype(float), 30))
    frac = np.arange(n + 1) / n
    wiggle = np.concatenate(([0.0], np.cumsum(rng.normal(0.0, 0.1 * sigma0, n))))
    log_open, log_close = math.log(closes.open), math.log(closes.close)
    level = log_open + frac * (log_close - log_open) + wiggle - frac * wiggle[-1]
    shocks = rng.standard_normal(n)
    jump = np.where(rng.random(n) < 0.006, rng.uniform(2.5, 4.0, n), 0.0)
    shocks += jump * np.where(rng.random(n) < 0.5, -1.0, 1.0)
    gex_sign = _GexSign(oi, closes.open, session, expiries, sim.strike_interval, strike_count)
    x, positive = _steer(level, sig[:n] * shocks, iv_atm, gex_sign)
    x += frac * (log_close - x[n])  # the bridge: end exactly on the planned close
    prices = np.round(np.exp(x), 2).astype(np.float64)
    prices[0], prices[n] = closes.open, closes.close

    bar_sig = sig[:n] * prices[:n]
    high = np.round(np.maximum(prices[:n], prices[1:]) + np.abs(rng.normal(0, 0.4, n)) * bar_sig, 2)
    low = np.round(np.minimum(prices[:n], prices[1:]) - np.abs(rng.normal(0, 0.4, n)) * bar_sig, 2)
    u_shape = 1.0 + 1.5 * (np.exp(-frac[:n] * n / 30.0) + np.exp(-(1 - frac[:n]) * n / 30.0))
    moved = np.abs(np.diff(x)) / sigma0
    volume = np.rint(rng.gamma(4.0, 600.0, n) * u_shape * (1.0 + 0.5 * moved)).astype(np.int64)
    bid, ask = _order_flow(rng, (x - _rolling_mean(x, 10)) / sig)
    proxy = np.round(prices / sim.proxy_ratio * (1.0 + 2e-5 * rng.standard_normal(n + 1)), 2)
    return DayPath(session, closes, plan, prices, high, low, volume, proxy, bid, ask,
                   iv_atm, volatile, positive, oi)


class _GexSign:
    """Sign of the chain's net GEX at a spot and minute, as the generator steers by it."""

    def __init__(self, oi: OpenInterest, anchor: float, session: SessionTimes,
                 expiries: list[datetime], interval: float, strike_count: int) -> None:
        self._low = math.floor(anchor * 0.7 / interval)
        grid = np.arange(self._low, math.ceil(anchor * 1.3 / interval) + 1, dtype=np.int64)
        self._net_oi = [
            oi.contracts(grid, interval, True, e) - oi.contracts(grid, interval, False, e)
            for e in range(len(expiries))
        ]
        self._size = grid.shape[0]
        self._session = session
        self._expiries = expiries
        self._interval = interval
        self._count = strike_count

    def positive(self, spot: float, minute: int, iv_atm: float) -> bool:
        """True when calls' gamma x OI outweighs puts' over the minute's strike window."""
        at = self._session.open + timedelta(minutes=minute)
        ks = strike_window(spot, self._interval, self._count)
        pos = np.clip(ks - self._low, 0, self._size - 1)
        strikes = strike_prices(ks, self._interval)
        iv = smile(iv_atm, spot, strikes)
        gex = 0.0
        for net_oi, expiry in zip(self._net_oi, self._expiries, strict=True):
            gex += float(bs_gamma(spot, strikes, years_to(expiry, at), iv) @ net_oi[pos])
        return gex > 0


def _steer(level: FloatArray, noise: FloatArray, iv_atm: FloatArray,
           gex_sign: _GexSign) -> tuple[FloatArray, BoolArray]:
    """Log prices: an OU pull to `level` while gamma is positive, momentum while negative."""
    n = noise.shape[0]
    x = np.empty(n + 1)
    x[0] = level[0]
    returns = np.zeros(n)
    positive = np.empty(n + 1, dtype=bool)
    for m in range(n + 1):
        positive[m] = gex_sign.positive(math.exp(x[m]), m, float(iv_atm[m]))
        if m == n:
            break
        if positive[m]:
            drift = OU_PULL * (level[m] - x[m])
        else:
            momentum = 0.25 * float(returns[max(m - 10, 0):m].mean()) if m else 0.0
            drift = 0.15 * (returns[m - 1] if m else 0.0) + momentum + 0.01 * (level[m] - x[m])
        returns[m] = drift + noise[m]
        x[m + 1] = x[m] + returns[m]
    return x, positive


def _order_flow(rng: np.random.Generator, deviation: FloatArray) -> tuple[IntArray, IntArray]:
    """Proxy bid and ask sizes whose log ratio leans against `deviation` (in sigmas).

    Buyers show up on dips and sellers on rips, with persistent noise so that a band breach
    meets the OFI thresholds on some minutes only; about one minute in 200 has a zero size.
    """
    count = deviation.shape[0]
    persistent = np.empty(count)
    carry = 0.0
    for m, value in enumerate(np.asarray(rng.normal(0.0, 0.45, count)).tolist()):
        carry = 0.6 * carry + value
        persistent[m] = carry
    lean = -FLOW_LEAN * deviation + persistent - FLOW_BIAS
    depth = rng.uniform(5.0, 30.0, count)
    bid = np.clip(np.rint(depth * np.exp(lean / 2)), 1, 60).astype(np.int64)
    ask = np.clip(np.rint(depth * np.exp(-lean / 2)), 1, 60).astype(np.int64)
    zero = rng.random(count) < 1 / 200
    bid_side = rng.random(count) < 0.5
    bid[zero & bid_side] = 0
    ask[zero & ~bid_side] = 0
    return bid, ask
