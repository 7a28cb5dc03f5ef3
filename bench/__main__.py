"""``make bench``: run every benchmark and write BENCHMARKS.md.

Each module ``bench/bench_*.py`` exposes ``run()`` returning one result dict or a list of them
with the keys ``name``, ``value``, ``unit``, ``target``, ``ok`` and, where the figure is a
comparison measured in the same run, ``baseline`` and ``ratio``. ``python -m bench synth
lookup`` runs a subset (names after ``bench_``); BENCHMARKS.md keeps the rows of benchmarks
not run this time.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
ORDER = ["synth", "import", "export", "lookup", "search", "token", "reconcile"]


def _machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (
            int(line.split()[1]) // 1024 // 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB RAM, Python {platform.python_version()}"


def _fmt(v: Any, share: bool = False) -> str:
    if isinstance(v, float):
        # a share without a unit (F1, precision) needs four decimals: 0.9971 is not 1.00
        return f"{v:.4f}" if share and 0 < abs(v) <= 1 else f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "" if v is None else str(v)


def write_markdown(results: dict[str, list[dict[str, Any]]]) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`). Every comparison is measured against",
        "a baseline run on the same machine in the same run, so the ratio is what counts.",
        "",
        "| benchmark | figure | baseline (same run) | ratio | target | met | measured |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in ORDER + sorted(k for k in set(results) - set(ORDER) if not k.startswith("_")):
        for r in results.get(key, []):
            share = not r.get("unit")
            figure = f"{_fmt(r.get('value'), share)} {r.get('unit', '')}".strip()
            base = r.get("baseline")
            base_s = f"{_fmt(base, share)} {r.get('unit', '')}".strip() if base is not None else ""
            ratio = f"{r['ratio']:.2f}×" if isinstance(r.get("ratio"), float | int) else ""
            ok = {True: "yes", False: "**no**"}.get(r.get("ok"), "")
            lines.append(
                f"| {r.get('name')} | {figure} | {base_s} | {ratio} | "
                f"{r.get('target', '')} | {ok} | {r.get('measured_at', '')} |"
            )
            if r.get("note"):
                lines.append(f"| ↳ {r['note']} | | | | | | |")
    machine = results.get("_machine", [{}])[0].get("machine", _machine())
    lines += ["", f"Machine: {machine}.", ""]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))


def main(argv: list[str]) -> int:
    wanted = argv or ORDER
    results: dict[str, list[dict[str, Any]]] = (
        json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    )
    failed = False
    for name in wanted:
        print(f"== bench_{name}", flush=True)
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            out = module.run()
        except Exception:
            traceback.print_exc()
            failed = True
            continue
        rows = out if isinstance(out, list) else [out]
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        for r in rows:
            r.setdefault("measured_at", stamp)
            print(f"   {r}", flush=True)
        results[name] = rows
        print(f"   ({time.perf_counter() - start:.0f} s)", flush=True)
    results["_machine"] = [{"machine": _machine()}]
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str))
    write_markdown(results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
