"""A run as a library call: `run(RunPlan(...), env=..., stop=..., sinks=...) -> RunResult`.

`plan` describes the run, `market` opens its market side (for the daemon and for anything that
reads minutes the same way), `runner` wires and trades it.
"""

from gexbot.run.market import RunMarket, open_run_market
from gexbot.run.plan import RunPlan
from gexbot.run.runner import RunResult, run

__all__ = ["RunMarket", "RunPlan", "RunResult", "open_run_market", "run"]
