"""Officer search benchmark (``python -m bench search``), on the lookup benchmark's register
(``BENCH_LOOKUP_PEOPLE`` people, default 1,000,000, in PostgreSQL; loaded once and kept).

1. **Name + birth date**: ``GET /api/v1/persons?q=<full name>&birth_date=<date>`` with an
   officer bearer token, every search audited durably, served by uvicorn with
   ``BENCH_LOOKUP_WORKERS`` workers (default 2) and loaded by ``wrk`` with 64 connections
   picking random (name, date) pairs of the register. Target >= 1,000 req/s with p99 <= 100
   ms. Baseline in the same run: the audited person lookup by ID on the same server (the
   register's fastest read), as a ratio.
2. **A common name alone**: the five most frequent full names of the register ("Nguyễn Văn
   Hùng" is shared by thousands of people), each searched 20 times one after another without
   a date (the first page, and the third); the figure is the slowest name's median. Target
   <= 100 ms.
3. **The citizen's sign-in page** (``GET /account/login``, HTML), loaded the same way as 1;
   reported without a target (every citizen passes it).

Audit rows written by the benchmark are deleted again after the run.
"""

from __future__ import annotations

import http.client
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench import bench_lookup as lookup  # noqa: E402
from bench import load  # noqa: E402

TARGET_RPS = 1000.0
TARGET_P99_MS = 100.0
TARGET_COMMON_MS = 100.0
SAMPLE = 50_000
REPEAT = 20

_LUA = """
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""


def search_paths(name: str, path: Path) -> str:
    """Write one search path a line (a register person's full name and birth date)."""
    with psycopg.connect(lookup._dsn(name)) as conn:
        rows = conn.execute(
            "SELECT full_name, birth_date FROM person_current TABLESAMPLE SYSTEM (10) LIMIT %s",
            [SAMPLE],
        ).fetchall()
    lines = [f"/api/v1/persons?q={quote(n)}&birth_date={d.isoformat()}" for n, d in rows]
    path.write_text("".join(line + "\n" for line in lines))
    return lines[0]


def common_names(name: str, count: int = 5) -> list[tuple[str, int]]:
    """The register's most frequent full names, with how many people share each."""
    with psycopg.connect(lookup._dsn(name)) as conn:
        rows = conn.execute(
            "SELECT min(full_name), count(*) FROM person_current GROUP BY name_key"
            " ORDER BY count(*) DESC LIMIT %s",
            [count],
        ).fetchall()
    return [(str(n), int(c)) for n, c in rows]


def timed_get(base: str, path: str, headers: dict[str, str], repeat: int) -> list[float]:
    """Milliseconds of ``repeat`` sequential GETs on one connection (each must answer 200)."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    out = []
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            out.append((time.perf_counter() - start) * 1000)
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status}")
    finally:
        conn.close()
    return out


def measure(wrk: str, base: str, script: str) -> dict[str, float]:
    load.run_wrk(wrk, base, script, lookup.WARMUP_S)
    return load.run_wrk(wrk, base, script, lookup.DURATION_S)


def run() -> list[dict[str, Any]]:
    """Every figure of this benchmark, as result rows for ``python -m bench``."""
    import secrets

    from dancu.core.access import OfficerContext, Role
    from dancu.core.officers import TokenSigner

    wrk = load.ensure_wrk()
    name, _ = lookup.prepare(lookup.PEOPLE)
    secret = secrets.token_urlsafe(32)
    token = TokenSigner(secret).issue(OfficerContext(lookup.BENCH_ACTOR, Role.MINISTRY))
    auth = {"Authorization": f"Bearer {token}"}
    common = common_names(name)
    with tempfile.TemporaryDirectory() as tmp:
        paths, ids = Path(tmp) / "paths.txt", Path(tmp) / "ids.txt"
        first = search_paths(name, paths)
        lookup.sample_ids(name, ids)
        env = {
            "DANCU_DATABASE_URL": lookup._sa_url(name),
            "DANCU_SECRET_KEY": secret,
            "DANCU_DATA_DIR": tmp,
        }
        try:
            with lookup.serve("dancu.app:create_app", env, first, auth) as base:
                by_id = lookup.measure(wrk, base, "/api/v1/persons/", ids, token)
                searched = measure(wrk, base, _LUA % {"paths": paths, "token": token})
                medians = {}
                for full_name, _n in common:
                    q = quote(full_name)
                    times = timed_get(base, f"/api/v1/persons?q={q}", auth, REPEAT)
                    times += timed_get(base, f"/api/v1/persons?q={q}&page=3", auth, REPEAT)
                    medians[full_name] = statistics.median(times)
                login_lua = 'request = function() return wrk.format("GET", "/account/login") end'
                sign_in = measure(wrk, base, login_lua)
        finally:
            lookup._cleanup_audit(name)
    slowest = max(medians, key=lambda k: medians[k])
    shared = dict(common)
    conditions = (
        f"{lookup.PEOPLE:,} people on PostgreSQL; uvicorn {lookup.WORKERS} workers; wrk "
        f"{load.THREADS} threads on the same cores"
    )
    return [
        {
            "name": f"officer search, name + birth date, audited, {load.CONNECTIONS} conns",
            "value": round(searched["rps"], 1),
            "unit": "req/s",
            "baseline": round(by_id["rps"], 1),
            "ratio": round(searched["rps"] / by_id["rps"], 2),
            "target": f">= {TARGET_RPS:,.0f} req/s",
            "ok": searched["rps"] >= TARGET_RPS
            and searched["non2xx"] == 0
            and searched["errors"] == 0,
            "note": f"baseline: the audited lookup by ID on the same server; {conditions}; "
            f"{SAMPLE:,} (name, date) pairs of the register; {searched['non2xx']:.0f} "
            f"non-2xx, {searched['errors']:.0f} socket errors",
        },
        {
            "name": "officer search, name + birth date, p99 latency",
            "value": round(searched["p99_ms"], 2),
            "unit": "ms",
            "baseline": round(by_id["p99_ms"], 2),
            "ratio": round(searched["p99_ms"] / by_id["p99_ms"], 2),
            "target": f"<= {TARGET_P99_MS:.0f} ms",
            "ok": searched["p99_ms"] <= TARGET_P99_MS,
            "note": f"p50 {searched['p50_ms']:.2f} ms",
        },
        {
            "name": "officer search, a common name alone (slowest of the 5 commonest), median",
            "value": round(medians[slowest], 2),
            "unit": "ms",
            "target": f"<= {TARGET_COMMON_MS:.0f} ms",
            "ok": medians[slowest] <= TARGET_COMMON_MS,
            "note": f"slowest: {slowest!r}, shared by {shared[slowest]:,} people; "
            + ", ".join(f"{n} {m:.1f} ms" for n, m in medians.items())
            + f"; {REPEAT} sequential requests each for page 1 and page 3",
        },
        {
            "name": f"citizen sign-in page (GET /account/login), {load.CONNECTIONS} conns",
            "value": round(sign_in["rps"], 1),
            "unit": "req/s",
            "target": "",
            "ok": None,
            "note": f"p50 {sign_in['p50_ms']:.2f} ms, p99 {sign_in['p99_ms']:.2f} ms; "
            f"{sign_in['non2xx']:.0f} non-2xx; {conditions}",
        },
    ]


if __name__ == "__main__":
    for result in run():
        print(result)
