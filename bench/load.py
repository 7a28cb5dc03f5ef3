"""HTTP load for the benchmarks: servers in their own process groups, and ``wrk`` (Debian's
package, installed when missing) driven by a Lua script that reports one parseable line."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 64
THREADS = 2

# Appended to every wrk script: one line with the figures this module reads back.
RESULT_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d "
    .. "errors=%d non2xx=%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, summary.errors.status))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def uvicorn_command(target: str, port: int, workers: int) -> list[str]:
    """``uvicorn --factory target`` with uvloop and httptools when installed."""
    command = [sys.executable, "-m", "uvicorn", target, "--factory", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    command += ["--no-access-log", "--log-level", "warning"]
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401

        command += ["--loop", "uvloop"]
    with contextlib.suppress(ImportError):
        import httptools  # noqa: F401

        command += ["--http", "httptools"]
    return command


def answers(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    """The status ``GET path`` gets, or 0 when nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()


@contextlib.contextmanager
def serve(
    command: list[str], env: dict[str, str], port: int, ready: Callable[[], bool]
) -> Iterator[str]:
    """Run ``command`` (with ``env`` added, dancu's sources on the path) in its own process
    group; yields the base URL once ``ready()``; stops the whole group afterwards."""
    full_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        **env,
    }
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            command, env=full_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not ready():
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"{command[:3]} exited:\n{log.read().decode()[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command[:3]} did not answer within 60 s")
                time.sleep(0.3)
            yield f"http://127.0.0.1:{port}"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True)
        path = shutil.which("wrk")
    if path is None:
        subprocess.run(["apt-get", "update", "-q"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
        path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed and could not be installed")
    return path


def run_wrk(wrk: str, base: str, script: str, seconds: int) -> dict[str, float]:
    """Load ``base`` for ``seconds`` with the Lua ``script``: requests/s, p50/p99 in ms,
    socket errors and non-2xx answers."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script + RESULT_LUA)
        path = f.name
    try:
        out = subprocess.run(
            [wrk, "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds}s",
             "--timeout", "10s", "-s", path, base],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(path)
    m = re.search(
        r"RESULT requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) "
        r"errors=(\d+) non2xx=(\d+)",
        out,
    )
    if m is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests, duration, p50, p99, errors, non2xx = (int(g) for g in m.groups())
    return {
        "rps": requests / (duration / 1e6),
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
        "errors": errors,
        "non2xx": non2xx,
        "requests": requests,
    }
