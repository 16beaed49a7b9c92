"""`python -m bot health`: asks the running bot's `/healthz`, for a container's health check.

Only the standard library and the settings: it runs every half minute, so it starts fast.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from bot.config import ProbeSettings, split_address

PROBE_TIMEOUT_SECONDS = 3.0
# A bot listening on every interface is asked on the loopback one.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104
_LINE_CHARS = 300


def healthz_url(address: str) -> str:
    host, port = split_address(address)
    host = _LOOPBACK.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def probe(address: str | None, timeout: float = PROBE_TIMEOUT_SECONDS) -> tuple[int, str]:
    """The exit code (0 healthy, 1 not) and the one line to print."""
    if address is None:
        return 0, "health endpoint off (METRICS_ADDRESS is unset): nothing to ask"
    url = healthz_url(address)
    # Never through a proxy from the environment: the bot is on this machine.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return 0, _first_line(response.read()) or "ok"
    except urllib.error.HTTPError as exc:
        return 1, _first_line(exc.read()) or f"unhealthy: {url} answered HTTP {exc.code}"
    except OSError as exc:  # URLError, a refused connection, a timeout
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return 1, f"unhealthy: no answer from {url} ({reason})"


def run_health(settings: ProbeSettings) -> int:
    code, line = probe(settings.metrics_address)
    print(line, flush=True)
    return code


def _first_line(body: bytes) -> str:
    lines = body.decode("utf-8", errors="replace").strip().splitlines()
    return lines[0][:_LINE_CHARS] if lines else ""
