"""Time masking a recorded chain line: ms per line, and the prefix tree against plain alternation.

Run as ``python -m bench.bench_masking``. A recorder masks every line it writes (a chain line is
about 70 KB), the Schwab transport searches every answer, and at `--speed max` a recording run
writes three lines a simulated minute, so the cost must stay a few ms. Each spelling of each
secret (a few for a plain one, a hundred or more for one full of quotes and `%`) is a word of
one regular expression; the baseline, in the same run, is the same words as one alternation
longest first, which is how masking was done before the spellings multiplied.
"""

from __future__ import annotations

import json
import re
import timeit
from datetime import datetime

from gexbot.core.session import EASTERN, TradingCalendar
from gexbot.market.sim import SimMarket
from gexbot.redaction import Masker, basic_credentials, spellings
from gexbot.settings import load_variant

PLAIN = ("AbCdEfGhIjKlMnOpQrStUvWxYz012345", "ZyXwVuTsRqPoNmLk", "I0.b2F1dGgy" + "Qx7" * 30)
HOSTILE = ('Kq7"Zx\\Wv%2Bp+Jm/Ty=Rs.*Nd(Lf)', "Gh$9'Yt^Vb[Qw]+Xe{2}|Pz?Uc&Mo==",
           'Rf-Jx"Tq\\Hv%Kp+Wz/Lb=Cn.Dm*Sy?Ez(Fa)Gk[Ib]')  # fmt: skip


def chain_line() -> str:
    """One recorded chain answer of a simulated $SPX minute, as JSON text."""
    preset = load_variant("es")
    market = SimMarket(preset, TradingCalendar(preset.calendar, 15), 1)
    at = datetime(2026, 10, 13, 10, 0, tzinfo=EASTERN)
    exchange = market.get("chains", {"symbol": "$SPX", "strikeCount": "40"}, at)
    return json.dumps(exchange.body, separators=(",", ":"), ensure_ascii=False)


def ms_per_call(func: object, number: int = 20) -> float:
    """Best of five runs, in ms per call."""
    return min(timeit.repeat(func, number=number, repeat=5)) / number * 1e3  # type: ignore[arg-type]


def main() -> None:
    """One line per set of secrets: words, ms per line with the tree, the baseline, the ratio."""
    line = chain_line()
    print(f"chain line: {len(line):,} characters")
    for name, secrets in (("plain", PLAIN), ("hostile", HOSTILE)):
        values = [*secrets, basic_credentials(secrets[0], secrets[1])]
        masker = Masker(values)
        words = set().union(*(spellings(value) for value in values))
        ordered = sorted(words, key=len, reverse=True)
        baseline = re.compile("|".join(re.escape(word) for word in ordered))
        tree = ms_per_call(lambda m=masker: m.mask(line))
        alternation = ms_per_call(lambda p=baseline: p.sub("***", line))
        print(f"{name:8} {len(words):4} spellings: {tree:6.2f} ms per line with the prefix tree,"
              f" {alternation:6.2f} ms as one alternation ({alternation / tree:.1f}x slower)")


if __name__ == "__main__":
    main()
