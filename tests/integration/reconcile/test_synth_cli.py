"""``dancu synth extract`` end to end: files written with the options given, and a bad option
or a missing population refused with one line and exit code 2."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dancu.cli import app
from dancu.registry.synth_population import generate_population

runner = CliRunner()


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pop") / "people.parquet"
    generate_population(500, 2, path, as_of=date(2026, 1, 1))
    return path


def test_extract_and_truth_are_written(population: Path, tmp_path: Path) -> None:
    out, truth = tmp_path / "bhxh.csv", tmp_path / "answers.parquet"
    args = ["synth", "extract", "--population", str(population), "--rows", "120"]
    args += ["--out", str(out), "--truth", str(truth), "--delimiter", "tab", "--headers", "en"]
    result = runner.invoke(app, [*args, "--duplicate-keys", "0.05", "--seed", "9"])
    assert result.exit_code == 0, result.output
    assert "120 rows written" in result.output
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == 120 and "personal_id" in rows[0]
    assert len({r["agency_key"] for r in rows}) == 114
    assert pq.read_table(truth).num_rows == 120


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--headers", "fr"], "headers 'fr'"),
        (["--encoding", "latin-1"], "encoding 'latin-1'"),
        (["--out", "x.json"], "an extract is"),
        (["--rows", "0"], "at least 1"),
        (["--rows", "100000"], "the population has 500"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    population: Path, tmp_path: Path, option: list[str], message: str
) -> None:
    args = ["synth", "extract", "--population", str(population), "--out", str(tmp_path / "e.csv")]
    result = runner.invoke(app, [*args, *option])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "e.csv").exists()


def test_a_missing_population_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "extract", "--population", str(tmp_path / "no.csv")])
    assert result.exit_code == 2 and "is not a file" in " ".join(result.output.split())
