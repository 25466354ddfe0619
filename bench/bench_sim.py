"""Speed and calibration of the simulated market, measured on its own Schwab-shaped JSON.

    python -m bench.bench_sim                      # simulated minutes per second (ES preset)
    python -m bench.bench_sim --stats --variant nq # the calibration statistics of a window

The statistics are what the strategy will see: net GEX from the chain answer (sentinel greeks
left out), spot and the proxy's bid/ask sizes from the quotes answer, bars and the previous
close from the price history answer. A 2-state Gaussian HMM is fitted on the 1-minute returns
the way training does, so "two volatility states" is checked, not assumed.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from gexbot.core.session import TradingCalendar
from gexbot.core.types import SessionTimes
from gexbot.market.sim import SimMarket
from gexbot.settings import Preset, load_variant

SENTINEL = -999.0


def _ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def requests(preset: Preset, session: SessionTimes, last_expiration: date,
             at: datetime) -> list[tuple[Any, dict[str, str]]]:
    """The three requests of minute `at`, as the loop makes them."""
    return [
        ("quotes", {"symbols": f"{preset.symbol},{preset.proxy}", "fields": "quote,reference"}),
        ("pricehistory", {
            "symbol": preset.symbol, "periodType": "day", "period": "1",
            "frequencyType": "minute", "frequency": "1", "startDate": _ms(session.open),
            "endDate": _ms(at), "needExtendedHoursData": "false", "needPreviousClose": "true",
        }),
        ("chains", {
            "symbol": preset.symbol, "contractType": "ALL",
            "strikeCount": str(preset.chain.strike_count), "includeUnderlyingQuote": "false",
            "fromDate": session.date.isoformat(), "toDate": last_expiration.isoformat(),
        }),
    ]


def net_gex(chain: dict[str, Any]) -> float:
    """Sum of gamma x OI x 100 x spot over calls minus puts; sentinel or missing greeks skipped."""
    spot = chain["underlyingPrice"]
    total = 0.0
    for key, sign in (("callExpDateMap", 1.0), ("putExpDateMap", -1.0)):
        for strikes in chain[key].values():
            for contracts in strikes.values():
                for contract in contracts:
                    gamma, oi = contract["gamma"], contract["openInterest"]
                    if gamma != SENTINEL and gamma >= 0 and oi >= 0:
                        total += sign * gamma * oi * 100.0 * spot
    return total


@dataclass
class DayStats:
    date: date
    gap: float
    positive: list[bool]
    breaches_low: list[float]
    breaches_high: list[float]
    minutes_banded: int
    returns: list[float]


def day_stats(sim: SimMarket, preset: Preset, session: SessionTimes,
              last_expiration: date) -> DayStats:
    """Walk one session minute by minute through the JSON answers."""
    spots: list[float] = []
    ratios: list[float] = []
    positive: list[bool] = []
    low: list[float] = []
    high: list[float] = []
    banded = 0
    previous_close = math.nan
    at = session.open
    while at < session.close:
        quotes, history, chain = (sim.get(ep, params, at).body
                                  for ep, params in requests(preset, session, last_expiration, at))
        spot = quotes[preset.symbol]["quote"]["lastPrice"]
        proxy = quotes[preset.proxy]["quote"]
        previous_close = history["previousClose"]
        spots.append(spot)
        if proxy["bidSize"] > 0 and proxy["askSize"] > 0:
            ratios.append(proxy["bidSize"] / proxy["askSize"])
        positive.append(net_gex(chain) > 0)
        window = np.array(spots[-20:])
        if len(window) >= 10:
            banded += 1
            mu, sigma = window.mean(), window.std()
            ofi = float(np.mean(ratios[-5:])) if ratios else math.nan
            if spot < mu - 2 * sigma:
                low.append(ofi)
            elif spot > mu + 2 * sigma:
                high.append(ofi)
        at += timedelta(minutes=1)
    full = sim.get("pricehistory", requests(preset, session, last_expiration, session.close)[1][1],
                   session.close).body
    closes = [previous_close] + [c["close"] for c in full["candles"]]
    returns = np.diff(np.log(np.array(closes[1:]))).tolist()
    gap = abs(spots[0] - previous_close) / previous_close
    return DayStats(session.date, gap, positive, low, high, banded, returns)


def hmm_states(days: list[DayStats], seeds: int = 5) -> tuple[float, float]:
    """Standard deviations of the two fitted states, in return units (low, high)."""
    from hmmlearn.hmm import GaussianHMM

    scale = 1e4
    x = np.concatenate([np.array(d.returns) * scale for d in days]).reshape(-1, 1)
    lengths = [len(d.returns) for d in days]
    best, best_score = None, -math.inf
    for seed in range(seeds):
        model = GaussianHMM(n_components=2, covariance_type="diag", n_iter=200, random_state=seed)
        model.fit(x, lengths)
        score = model.score(x, lengths)
        if score > best_score:
            best, best_score = model, score
    assert best is not None
    stds = np.sort(np.sqrt(best.covars_.reshape(-1))) / scale
    return float(stds[0]), float(stds[1])


def calibration(variant: str, seed: int, start: date, sessions: int) -> dict[str, float]:
    """The calibration statistics of `sessions` sessions from `start`; prints one line per day."""
    preset = load_variant(variant)
    calendar = TradingCalendar(preset.calendar, preset.strategy.flatten_minutes_before_close)
    sim = SimMarket(preset, calendar, seed)
    ahead = preset.chain.expirations_ahead
    days = []
    for session in calendar.sessions_from(start, sessions):
        last_expiration = calendar.sessions_from(session.date, ahead + 1)[-1].date
        stats = day_stats(sim, preset, session, last_expiration)
        flips = sum(a != b for a, b in zip(stats.positive, stats.positive[1:], strict=False))
        breaches = len(stats.breaches_low) + len(stats.breaches_high)
        print(f"  {stats.date}  positive {np.mean(stats.positive):5.1%}  flips {flips:3d}"
              f"  gap {stats.gap:6.2%}  breaches {breaches}")
        days.append(stats)
    positive = np.concatenate([d.positive for d in days])
    low = np.concatenate([d.breaches_low for d in days])
    high = np.concatenate([d.breaches_high for d in days])
    returns = np.concatenate([d.returns for d in days])
    sigma0 = preset.sim.daily_vol / math.sqrt(390.0)
    calm, wild = hmm_states(days)
    return {
        "positive_minutes": float(positive.mean()),
        "days_mostly_positive": sum(bool(np.mean(d.positive) > 0.5) for d in days),
        "days_mostly_negative": sum(bool(np.mean(d.positive) <= 0.5) for d in days),
        "days_with_both_signs": sum(bool(0 < np.mean(d.positive) < 1) for d in days),
        "breach_share": (len(low) + len(high)) / sum(d.minutes_banded for d in days),
        "lower_breaches": len(low),
        "lower_ofi_above_2": float(np.mean(low > 2.0)),
        "upper_breaches": len(high),
        "upper_ofi_below_0.5": float(np.mean(high < 0.5)),
        "gap_days": sum(d.gap > preset.strategy.gap.threshold for d in days),
        "return_std_over_base": float(returns.std() / sigma0),
        "hmm_low_std_over_base": calm / sigma0,
        "hmm_high_std_over_base": wild / sigma0,
        "hmm_variance_ratio": (wild / calm) ** 2,
    }


def bench(variant: str, seed: int, start: date, sessions: int) -> float:
    """Simulated minutes per second answering the three requests, day building included."""
    preset = load_variant(variant)
    calendar = TradingCalendar(preset.calendar, preset.strategy.flatten_minutes_before_close)
    sim = SimMarket(preset, calendar, seed)
    plan: list[tuple[datetime, list[tuple[Any, dict[str, str]]]]] = []
    for session in calendar.sessions_from(start, sessions):
        last = calendar.sessions_from(session.date, preset.chain.expirations_ahead + 1)[-1].date
        at = session.open
        while at < session.close:
            plan.append((at, requests(preset, session, last, at)))
            at += timedelta(minutes=1)
    began = time.perf_counter()
    for at, calls in plan:
        for endpoint, params in calls:
            sim.get(endpoint, params, at)
    return len(plan) / (time.perf_counter() - began)


def main() -> None:
    """Print the bench figure, or the calibration statistics with --stats."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="es")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 10, 1))
    parser.add_argument("--sessions", type=int, default=None)
    parser.add_argument("--stats", action="store_true", help="print calibration statistics")
    args = parser.parse_args()
    if args.stats:
        print(f"{args.variant} seed {args.seed}, {args.sessions or 20} sessions from {args.start}")
        stats = calibration(args.variant, args.seed, args.start, args.sessions or 20)
        for name, value in stats.items():
            print(f"  {name:24s} {value:.3f}" if isinstance(value, float) else
                  f"  {name:24s} {value}")
        return
    rate = bench(args.variant, args.seed, args.start, args.sessions or 3)
    print(f"{args.variant}: {rate:,.0f} simulated minutes/s (quotes + pricehistory + chains)")


if __name__ == "__main__":
    main()
