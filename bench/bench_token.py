"""Token endpoint benchmark (``python -m bench token``).

The grant agency systems use: ``client_credentials`` with ``private_key_jwt`` (a fresh ES256
client assertion per request, ``jti`` replay protection on) returning an ES256-signed JWT
access token. dancu (uvicorn, ``BENCH_TOKEN_WORKERS`` workers, default 2, on PostgreSQL) is
measured side by side with the OpenID-certified reference provider ``oidc-provider`` (npm,
installed by this benchmark into ``bench/node_modules``, configured the same way in
``bench/oidc_reference.mjs``) with one and with two Node workers, each loaded by ``wrk``
with 64 connections. Every request carries its own pre-signed assertion (read by wrk from a
file), so no request is refused as a replay; any non-2xx answer invalidates the figure.

Target: dancu >= 1.0x the reference's throughput (the two-worker reference, the same cores),
p99 <= 60 ms.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench import load  # noqa: E402
from bench.bench_lookup import PG_ADMIN, _sa_url  # noqa: E402
from bench.load import CONNECTIONS, THREADS, ensure_wrk, free_port, uvicorn_command  # noqa: E402

WORKERS = int(os.environ.get("BENCH_TOKEN_WORKERS", "2"))
DURATION_S = int(os.environ.get("BENCH_TOKEN_SECONDS", "15"))
WARMUP_S = 4
MAX_RPS = 6000  # assertions are pre-signed for at most this rate
TARGET_RATIO = 1.0
TARGET_P99_MS = 60.0
DB = "dancu_bench_token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

_LUA = """
local lines = {}
for line in io.lines("%(file)s") do lines[#lines + 1] = line end
local counter = 0
local threads = 0
function setup(thread)
  thread:set("first", threads)
  threads = threads + 1
end
function init(args)
  counter = first
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local prefix = "grant_type=client_credentials&scope=registry.lookup&client_assertion_type="
  .. "urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer&client_assertion="
request = function()
  local line = lines[(counter %% #lines) + 1]
  counter = counter + %(threads)d
  return wrk.format(nil, "%(path)s", nil, prefix .. line)
end
"""


def _assertions(key: Any, audience: str, count: int, path: Path) -> Path:
    """``count`` client assertions for ``audience``, each with its own jti."""
    from joserfc import jwt

    now = int(time.time())
    header = {"alg": "ES256", "kid": key.kid}
    with path.open("w") as f:
        for _ in range(count):
            claims = {
                "iss": "bench",
                "sub": "bench",
                "aud": audience,
                "iat": now,
                "exp": now + 1800,
                "jti": secrets.token_urlsafe(18),
            }
            f.write(jwt.encode(header, claims, key) + "\n")
    return path


def _measure(wrk: str, base: str, path: str, key: Any, tmp: Path) -> dict[str, float]:
    audience = base + path
    runs = []
    for seconds in (WARMUP_S, DURATION_S):  # each run its own assertions: none is replayed
        file = tmp / f"assertions-{secrets.token_hex(3)}"
        _assertions(key, audience, MAX_RPS * seconds, file)
        script = _LUA % {"file": file, "path": path, "threads": THREADS}
        runs.append(load.run_wrk(wrk, base, script, seconds))
    return runs[-1]


def _ready(port: int) -> Any:
    return lambda: 0 < load.answers(port, "/.well-known/openid-configuration") < 500


def ensure_reference() -> str:
    """Node.js and oidc-provider (installed into bench/node_modules when missing)."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        raise RuntimeError("node and npm are needed for the reference provider")
    if not (ROOT / "bench" / "node_modules" / "oidc-provider").exists():
        subprocess.run(
            [npm, "install", "--prefix", str(ROOT / "bench"), "oidc-provider@9",
             "--no-audit", "--no-fund", "--silent"],
            check=True,
        )  # fmt: skip
    return node


def reference(node: str, workers: int, client_jwks: dict[str, Any]) -> Any:
    from joserfc.jwk import ECKey

    port = free_port()
    signing = ECKey.generate_key("P-256", parameters={"kid": "ref", "alg": "ES256"}, private=True)
    env = {
        "BENCH_PORT": str(port),
        "BENCH_WORKERS": str(workers),
        "BENCH_ISSUER": f"http://127.0.0.1:{port}",
        "BENCH_CLIENT_JWKS": json.dumps(client_jwks),
        "BENCH_SIGNING_JWK": json.dumps(signing.as_dict(private=True)),
        "NODE_ENV": "production",
    }
    return load.serve([node, "bench/oidc_reference.mjs"], env, port, _ready(port))


def dancu(client_jwks: dict[str, Any], tmp: Path) -> Any:
    from dancu.core import migrate
    from dancu.core.db import make_engine, make_sessionmaker
    from dancu.identity.clients import ClientRegistration, ClientRegistry

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')
    engine = make_engine(_sa_url(DB))
    try:
        migrate.upgrade(engine)
        ClientRegistry(make_sessionmaker(engine)).register(
            ClientRegistration(
                name="benchmark agency",
                purpose="token endpoint benchmark",
                client_id="bench",
                jwks=client_jwks,
                scopes=["registry.lookup"],
            )
        )
    finally:
        engine.dispose()
    port = free_port()
    env = {
        "DANCU_DATABASE_URL": _sa_url(DB),
        "DANCU_SECRET_KEY": secrets.token_urlsafe(32),
        "DANCU_DATA_DIR": str(tmp),
        "DANCU_ISSUER": f"http://127.0.0.1:{port}",
    }
    command = uvicorn_command("dancu.app:create_app", port, WORKERS)
    return load.serve(command, env, port, _ready(port))


def passcode_check() -> dict[str, Any]:
    """CPU time of one passcode verification (the cost of a sign-in), median of 21."""
    import statistics

    from dancu.identity.service import PASSCODE_HASHER

    hashed = PASSCODE_HASHER.hash("482915")
    times = []
    for _ in range(21):
        start = time.process_time()
        PASSCODE_HASHER.verify(hashed, "482915")
        times.append((time.process_time() - start) * 1000)
    median = statistics.median(times)
    return {
        "name": "passcode verification (argon2id)",
        "value": round(median, 1),
        "unit": "ms CPU",
        "target": "<= 100 ms",
        "ok": median <= 100,
        "note": f"m={PASSCODE_HASHER.memory_cost // 1024} MiB, t={PASSCODE_HASHER.time_cost}, "
        f"p={PASSCODE_HASHER.parallelism}: OWASP's minimum; see dancu.identity.service",
    }


def run() -> list[dict[str, Any]]:
    from joserfc.jwk import ECKey

    wrk = ensure_wrk()
    node = ensure_reference()
    key = ECKey.generate_key("P-256", parameters={"kid": "bench-1"}, private=True)
    jwks = {"keys": [key.as_dict(private=False)]}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with reference(node, 1, jwks) as base:
            ref1 = _measure(wrk, base, "/token", key, tmp)
        with reference(node, 2, jwks) as base:
            ref2 = _measure(wrk, base, "/token", key, tmp)
        try:
            with dancu(jwks, tmp) as base:
                ours = _measure(wrk, base, "/oidc/token", key, tmp)
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    ratio = ours["rps"] / ref2["rps"]
    valid = all(r["non2xx"] == 0 and r["errors"] == 0 for r in (ours, ref1, ref2))
    return [
        {
            "name": f"token endpoint, client_credentials + private_key_jwt, {CONNECTIONS} conns",
            "value": round(ours["rps"], 1),
            "unit": "req/s",
            "baseline": round(ref2["rps"], 1),
            "ratio": round(ratio, 2),
            "target": f">= {TARGET_RATIO}x oidc-provider (2 workers)",
            "ok": valid and ratio >= TARGET_RATIO,
            "note": f"dancu: uvicorn {WORKERS} workers, PostgreSQL replay store; reference: "
            f"oidc-provider 9 in 2 Node workers ({ref1['rps']:,.0f} req/s in one); "
            f"non-2xx dancu {ours['non2xx']:.0f}, reference {ref2['non2xx']:.0f}",
        },
        {
            "name": "token endpoint p99 latency",
            "value": round(ours["p99_ms"], 2),
            "unit": "ms",
            "baseline": round(ref2["p99_ms"], 2),
            "ratio": round(ours["p99_ms"] / ref2["p99_ms"], 2) if ref2["p99_ms"] else None,
            "target": f"<= {TARGET_P99_MS:.0f} ms",
            "ok": valid and ours["p99_ms"] <= TARGET_P99_MS,
            "note": f"p50 {ours['p50_ms']:.2f} ms (reference {ref2['p50_ms']:.2f} ms)",
        },
        passcode_check(),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
