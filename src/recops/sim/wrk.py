"""Measure a server from outside: ``wrk`` on one core, the server pinned to another.

A load generator in the server's own process (or on its core) adds its cost to both
sides of every ratio and flatters the slower route. Here the client is Debian's
``wrk`` (a C program, one thread, keep-alive connections), pinned with CPU affinity
to a core the server does not use. A Lua script cycles through the request paths
given, so that e.g. every request names another user, and prints its summary as one
JSON line, which :func:`run_wrk` parses.

Beside each run it reads, from ``/proc``, the CPU the server's processes spent and
the share of the server's core that went elsewhere (steal by the hypervisor, other
processes): a ratio measured while the server did not have its core is not a ratio
of the server's costs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_LUA = r"""
local paths = {%(paths)s}
local method = "%(method)s"
local bodies = {%(bodies)s}
local headers = {["Content-Type"] = "application/json"}
local i = 0
request = function()
  i = i + 1
  local n = (i %% #paths) + 1
  if method == "POST" then
    return wrk.format("POST", paths[n], headers, bodies[n])
  end
  return wrk.format("GET", paths[n])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\n{"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class WrkResult:
    """One ``wrk`` run, with what the server and its core did meanwhile.

    Attributes
    ----------
    requests, seconds:
        Completed requests and the run's length.
    errors:
        Socket errors, timeouts and non-2xx/3xx answers.
    p50_ms, p90_ms, p99_ms, max_ms:
        Latency percentiles as wrk measured them.
    server_cpu_us:
        CPU microseconds the server's processes spent per request (None off Linux).
    server_core_share:
        Share of the server's core that its processes used; below ~0.95 under a
        saturating load means the core was busy elsewhere.
    core_steal:
        Share of the server's core stolen by the hypervisor during the run.
    """

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_us: float | None
    server_core_share: float | None
    core_steal: float | None

    @property
    def throughput(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def wrk_available() -> bool:
    """Whether ``wrk`` is on the PATH (Debian: ``apt install wrk``)."""
    return shutil.which("wrk") is not None


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process and its descendants so far (Linux ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    # Fields 14 and 15 of stat(5) (utime, stime), counted after the ")" of the name.
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(process_cpu_seconds(int(child)) or 0.0 for child in children)


def core_times(cpu: int) -> tuple[float, float] | None:
    """``(total, steal)`` jiffies of one core so far, from ``/proc/stat``."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            parts = line.split()
            if parts[0] == f"cpu{cpu}":
                values = [float(v) for v in parts[1:]]
                # user nice system idle iowait irq softirq steal (guest counted in user)
                return sum(values[:8]), values[7]
    except (OSError, IndexError, ValueError):
        return None
    return None


def _lua(paths: list[str], method: str, bodies: list[str]) -> str:
    def quote(text: str) -> str:
        return json.dumps(text)  # a JSON string literal is a valid Lua string literal here

    return _LUA % {
        "paths": ", ".join(quote(p) for p in paths),
        "method": method,
        "bodies": ", ".join(quote(b) for b in bodies) if bodies else '""',
    }


def run_wrk(
    url: str,
    paths: list[str],
    *,
    connections: int,
    seconds: float,
    client_cpu: int,
    server_pid: int | None = None,
    server_cpu: int | None = None,
    method: str = "GET",
    bodies: list[str] | None = None,
    timeout_s: float = 5.0,
) -> WrkResult:
    """One closed-loop ``wrk`` run of ``connections`` keep-alive connections, one thread.

    Parameters
    ----------
    url:
        ``http://host:port`` of the server.
    paths:
        Request paths (with query strings) cycled through in order.
    client_cpu:
        The core wrk is pinned to.
    server_pid, server_cpu:
        The server's process and core, to measure its CPU and its core's share.
    method, bodies:
        ``POST`` with one JSON body per path (cycled together).
    """
    if not wrk_available():
        raise RuntimeError("wrk is not installed (Debian: apt install wrk)")
    if not paths:
        raise ValueError("`paths` must name at least one request path")
    if method not in ("GET", "POST"):
        raise ValueError(f"`method` must be GET or POST (got {method!r})")
    if method == "POST" and (bodies is None or len(bodies) != len(paths)):
        raise ValueError("POST needs one body per path")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(paths, method, bodies or []))
    cpu_before = None if server_pid is None else process_cpu_seconds(server_pid)
    core_before = None if server_cpu is None else core_times(server_cpu)
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "-s",
        script.name,
        url + paths[0],
    ]
    try:
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {client_cpu}),
            timeout=seconds + 60,
        )
    finally:
        Path(script.name).unlink(missing_ok=True)
    cpu_after = None if server_pid is None else process_cpu_seconds(server_pid)
    core_after = None if server_cpu is None else core_times(server_cpu)
    line = next(row for row in reversed(done.stdout.splitlines()) if row.startswith("{"))
    raw = json.loads(line)
    wall = raw["duration_us"] / 1e6
    requests = int(raw["requests"])
    errors = sum(int(raw[k]) for k in ("connect", "read", "write", "status", "timeout"))
    cpu_us = share = steal = None
    if cpu_before is not None and cpu_after is not None and requests:
        cpu_us = (cpu_after - cpu_before) / requests * 1e6
        share = (cpu_after - cpu_before) / wall
    if core_before is not None and core_after is not None:
        total = core_after[0] - core_before[0]
        steal = (core_after[1] - core_before[1]) / total if total > 0 else 0.0
    return WrkResult(
        requests=requests,
        seconds=wall,
        errors=errors,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        server_cpu_us=cpu_us,
        server_core_share=share,
        core_steal=steal,
    )
