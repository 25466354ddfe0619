"""Health and metrics endpoint, served for real on 127.0.0.1 with an injected clock."""

from __future__ import annotations

import http.client
import json
import logging
import math
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from gexbot.core.session import EASTERN
from gexbot.core.types import (
    Action,
    Closed,
    Decided,
    Direction,
    ExitReason,
    Features,
    GexRegime,
    HmmState,
    Trade,
)
from gexbot.errors import ConfigError
from gexbot.shell.health import MAX_CONNECTIONS, HealthServer, Metrics, main, probe

START = 1_795_000_000.0  # epoch seconds
MINUTE = datetime(2026, 11, 20, 10, 31, tzinfo=EASTERN)
FEATURES = Features(2.5e9, GexRegime.POSITIVE, 3, 1.8, 0.44, HmmState.LOW, 1.0, 2.0, 0.5, 0.1)
UNKNOWN = Features(None, None, 0, None, None, None, None, None, None, None)


class FakeClock:
    def __init__(self) -> None:
        self.t = START

    def __call__(self) -> float:
        return self.t


def decided(action: Action = Action.WAIT, features: Features | None = FEATURES,
            position: Direction | None = None, balance: float = 100_000.0) -> Decided:
    reason = "quote_missing: none" if action is Action.SKIP else None
    return Decided("es", MINUTE, 6800.0, features, position, None, None, action, reason, (),
                   balance)


def closed(reason: ExitReason, balance: float) -> Closed:
    trade = Trade("es", "$SPX", Direction.LONG, "REVERSION", MINUTE, 6800.0, MINUTE, 6810.0,
                  4000.0, GexRegime.POSITIVE, reason, 5.88)
    return Closed(trade, balance)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> Iterator[HealthServer]:
    health = HealthServer(0, max_age_s=120.0, now=clock)
    health.start()
    yield health
    health.stop()


def get(url: str) -> tuple[int, str, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5.0) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def url(server: HealthServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def healthz(server: HealthServer) -> tuple[int, dict[str, object]]:
    status, content_type, body = get(url(server, "/healthz"))
    assert content_type == "application/json"
    return status, json.loads(body)


def test_port_zero_binds_a_real_port(server: HealthServer) -> None:
    assert server.port > 0


def test_a_starting_daemon_is_healthy_until_max_age(
    server: HealthServer, clock: FakeClock
) -> None:
    status, body = healthz(server)
    assert status == 200
    assert body["status"] == "starting"
    assert body["last_iteration_at"] is None
    clock.t += 121.0
    status, body = healthz(server)
    assert status == 503
    assert body["status"] == "stale"


def test_healthz_reports_the_last_iteration_and_turns_stale(
    server: HealthServer, clock: FakeClock
) -> None:
    clock.t += 30.0
    summary = {"variant": "es", "balance": 100_123.5, "position": Direction.LONG,
               "source": "sim", "last_minute": MINUTE}
    server.metrics.observe_iteration(0.42, summary)
    clock.t += 60.5
    status, body = healthz(server)
    assert status == 200
    assert body == {
        "status": "ok",
        "last_iteration_at": datetime.fromtimestamp(START + 30.0, UTC).isoformat(),
        "age_s": 60.5,
        "variant": "es",
        "balance": 100_123.5,
        "position": "LONG",
        "source": "sim",
        "last_minute": "2026-11-20T10:31:00-05:00",
    }
    clock.t += 60.0
    status, body = healthz(server)
    assert status == 503
    assert body["status"] == "stale"
    assert body["age_s"] == 120.5


def test_heartbeat_keeps_a_waiting_loop_healthy(server: HealthServer, clock: FakeClock) -> None:
    server.metrics.observe_iteration(0.1, {"variant": "es"})
    clock.t += 100.0
    server.metrics.heartbeat()
    clock.t += 100.0
    status, body = healthz(server)
    assert status == 200
    assert body["age_s"] == 100.0
    assert body["last_iteration_at"] == datetime.fromtimestamp(START, UTC).isoformat()


def _samples(server: HealthServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, content_type, body = get(url(server, "/metrics"))
    assert status == 200
    assert content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_metrics_follow_iterations_events_and_errors(server: HealthServer) -> None:
    metrics = server.metrics
    metrics.observe_iteration(0.2, {"balance": 100_000.0, "position": None})
    metrics.observe_iteration(3.0, {"balance": 100_000.0, "position": None})
    metrics.data_error("quote_missing")
    metrics.data_error("quote_missing")
    metrics.data_error("chain_status")
    metrics.observe_events([decided(Action.SKIP, features=None)])
    metrics.observe_events([closed(ExitReason.TARGET, 100_005.88),
                            decided(Action.CLOSE, balance=100_005.88)])
    metrics.handle([decided(Action.SHORT, position=Direction.SHORT, balance=100_005.88)])
    samples = _samples(server)
    assert samples[("gexbot_loop_latency_seconds_count", ())] == 2
    assert samples[("gexbot_loop_latency_seconds_sum", ())] == pytest.approx(3.2)
    assert samples[("gexbot_loop_latency_seconds_bucket", (("le", "0.25"),))] == 1
    assert samples[("gexbot_data_errors_total", (("kind", "quote_missing"),))] == 2
    assert samples[("gexbot_data_errors_total", (("kind", "chain_status"),))] == 1
    assert samples[("gexbot_trades_total", (("exit_reason", "TARGET"),))] == 1
    assert samples[("gexbot_skipped_minutes_total", ())] == 1
    assert samples[("gexbot_balance_usd", ())] == 100_005.88
    assert samples[("gexbot_position", ())] == -1
    assert samples[("gexbot_net_gex_usd", ())] == 2.5e9
    assert samples[("gexbot_hurst", ())] == 0.44
    assert samples[("gexbot_ofi", ())] == 1.8


def test_unknown_features_are_nan_and_flat_is_zero(server: HealthServer) -> None:
    server.metrics.observe_events([decided(position=Direction.LONG)])
    server.metrics.observe_events([decided(features=UNKNOWN)])
    samples = _samples(server)
    assert math.isnan(samples[("gexbot_hurst", ())])
    assert samples[("gexbot_position", ())] == 0


def test_metrics_use_their_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.data_error("x")
    assert second.registry is not first.registry
    assert REGISTRY.get_sample_value("gexbot_data_errors_total", {"kind": "x"}) is None
    assert first.registry.get_sample_value("gexbot_data_errors_total", {"kind": "x"}) == 1


def test_unknown_path_is_404(server: HealthServer) -> None:
    assert get(url(server, "/nope"))[0] == 404


@pytest.mark.parametrize(("path", "code"), [("/healthz", 200), ("/metrics", 200), ("/nope", 404)])
def test_a_head_request_gets_the_status_and_headers_of_a_get(
    server: HealthServer, path: str, code: int
) -> None:
    """Uptime checkers probe with HEAD: the same answer as GET, without the body."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5.0)
    try:
        connection.request("HEAD", path)
        response = connection.getresponse()
        assert response.status == code
        assert int(response.headers["Content-Length"]) == len(get(url(server, path))[2])
        assert response.read() == b""
    finally:
        connection.close()


def test_probe_and_its_cli(server: HealthServer, clock: FakeClock) -> None:
    target = url(server, "/healthz")
    assert probe(target, timeout=5.0) == 200
    assert main(["--probe", target]) == 0
    clock.t += 1000.0
    assert probe(target, timeout=5.0) == 503
    assert main(["--probe", target]) == 1


def test_probe_of_nothing_listening_is_zero() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert probe(f"http://127.0.0.1:{port}/healthz", timeout=5.0) == 0
    assert main(["--probe", f"http://127.0.0.1:{port}/healthz"]) == 1


def test_probe_rejects_a_non_http_url() -> None:
    with pytest.raises(ConfigError, match="expected an http"):
        probe("file:///etc/passwd", timeout=1.0)
    assert main(["--probe", "file:///etc/passwd"]) == 2


def test_a_busy_port_is_a_config_error(server: HealthServer, clock: FakeClock) -> None:
    second = HealthServer(server.port, max_age_s=60.0, now=clock)
    with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{server.port}"):
        second.start()


def test_an_impossible_port_is_a_config_error(clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="not a TCP port"):
        HealthServer(70_000, max_age_s=60.0, now=clock)


def _get(port: int, path: str = "/healthz") -> int:
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
        f"http://127.0.0.1:{port}{path}", timeout=10
    ) as response:
        return int(response.status)


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed the connection (recv sees the end of the stream)."""
    sock.settimeout(10.0)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, TimeoutError):
        return False


def test_connections_beyond_the_bound_are_closed_and_idle_ones_time_out(
    clock: FakeClock,
) -> None:
    server = HealthServer(0, max_age_s=60.0, now=clock, idle_timeout_s=0.2, max_connections=4)
    server.start()
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
    try:
        extra = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
        # Every connection past the fourth is closed at once, holding no thread.
        assert all(_closed_by_server(sock) for sock in extra)
        assert threading.active_count() <= before + 4
        # The four idle ones are closed after their timeout, and the slots serve again.
        assert all(_closed_by_server(sock) for sock in idle)
        assert _get(server.port) == 200
    finally:
        for sock in idle + extra:
            sock.close()
        server.stop()


def test_hundreds_of_idle_sockets_never_hold_hundreds_of_threads(clock: FakeClock) -> None:
    server = HealthServer(0, max_age_s=60.0, now=clock, idle_timeout_s=30.0)
    server.start()
    before = threading.active_count()
    sockets: list[socket.socket] = []
    try:
        for _ in range(500):
            sockets.append(socket.create_connection(("127.0.0.1", server.port)))
        peak = threading.active_count()
    finally:
        for sock in sockets:
            sock.close()
        server.stop()
    assert peak - before <= MAX_CONNECTIONS


@pytest.mark.parametrize(
    ("host", "warned"),
    [("127.0.0.1", False), ("::1", False), ("localhost", False), ("0.0.0.0", True),  # noqa: S104
     ("", True)],
)
def test_an_address_other_machines_reach_is_warned_about(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, host: str, warned: bool
) -> None:
    server = HealthServer(0, host, max_age_s=60.0, now=clock)
    try:
        server.start()
    except ConfigError:
        pytest.skip(f"{host!r} cannot be bound on this machine")
    server.stop()
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert bool(said) is warned
    if warned:
        assert "without authentication" in said[0]
        assert "0.0.0.0" in said[0]  # noqa: S104 - the address named in the warning


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--probe", "http://127.0.0.1:1/healthz", "--timeout", "nan"], "--timeout must be"),
        (["--probe", "http://127.0.0.1:1/healthz", "--timeout", "-1"], "--timeout must be"),
        (["--probe", "http://127.0.0.1:1/healthz", "--timeout", "inf"], "--timeout must be"),
        (["--probe", "127.0.0.1:8080"], "expected an http(s) URL"),
    ],
)
def test_a_probe_that_cannot_be_made_exits_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert says in line
