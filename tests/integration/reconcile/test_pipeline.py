"""The reconciliation pipeline end to end on DuckDB: a synthetic register of 4,000 people, a
realistic defective extract from ``dancu synth extract`` with hand-made rows appended whose
verdicts are worked out by hand (exact, zeros lost, an old CMND, two digits swapped, a wrong
digit, a re-established number, a death, nobody, the same person twice, two people alike, a
name written given name first with a two-digit year);
accuracy against the truth; every row one verdict; the correction file under the agency's
own headers; a durable run interrupted and resumed; and a property test that no row is ever
lost, whatever the values."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dancu.reconcile import pipeline, runner
from dancu.reconcile.fields import VERDICTS
from dancu.reconcile.readers import ExtractError
from dancu.reconcile.sources import RegisterFiles, population_register
from dancu.reconcile.synth_extract import generate_extract
from dancu.registry.synth_population import generate_population

AS_OF = date(2026, 11, 1)
HEADER = ["ma_ho_so", "ho_ten", "ngay_sinh", "gioi_tinh", "so_dinh_danh", "so_cmnd", "tinh_thanh"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A register (a population file, plus crafted people) and a generated extract."""
    root = tmp_path_factory.mktemp("reconcile")
    population = root / "population.csv"
    generate_population(4000, 11, population, as_of=AS_OF)
    with population.open(encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        people = list(reader)
    crafted = {
        "an": ("001088012345", "Nguyễn Văn An", "1988-03-14", "M", "012345678"),
        "hoa": ("001191023456", "Trần Thị Hoà", "1991-08-01", "F", "013456789"),
        "binh": ("038050034567", "Lê Văn Bình", "1950-01-01", "M", ""),
        "cuong": ("079075045678", "Hoàng Văn Cường", "1975-06-15", "M", ""),
        "hanh": ("031182056789", "Vũ Thị Hạnh", "1982-12-25", "F", ""),
        "lan1": ("001200067801", "Phạm Thị Lan", "2000-02-02", "F", ""),
        "lan2": ("001200067802", "Phạm Thị Lan", "2000-02-02", "F", ""),
    }
    template = people[0]
    for key, (pid, name, born, sex, cmnd) in crafted.items():
        row = {
            **template,
            "personal_id": pid,
            "full_name": name,
            "birth_date": born,
            "sex": sex,
            "status": "deceased" if key == "binh" else "alive",
            "death_date": "2024-05-01" if key == "binh" else "",
            "household_no": f"99{pid[-8:]}",
            "relationship": "head",
            "residence_commune_code": "00004",  # Phường Ba Đình, Hà Nội (2025 scheme)
            "residence_since": "2025-08-01",
            "old_id_number": cmnd,
            "old_id_issuer": "01" if cmnd else "",
            "father_personal_id": "",
            "mother_personal_id": "",
            "spouse_personal_id": "",
        }
        people.append(row)
    with population.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(people)
    generated = root / "generated.csv"
    generate_extract(population, 800, generated, seed=3)
    with generated.open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0][:5] == HEADER[:5]
    base = len(rows) - 1
    # Hand-made rows: (name, birth date, sex, personal ID, CMND, province) -> expected.
    hand = [
        (["Nguyễn Văn An", "14/03/1988", "Nam", "001088012345", "", "Hà Nội"], "matched", ""),
        (["TRAN THI HOA", "1991-08-01", "nu", "1191023456", "", ""], "hoa", "lost zeros"),
        (["Trần Thị Hòa", "01/08/1991", "Nữ", "", "013456789", "TP Hà Nội"], "hoa", "cmnd"),
        (["Lê Văn Bình", "01/01/1950", "Nam", "038050034567", "", ""], "deceased", ""),
        (["Hoàng Văn Cường", "15/06/1975", "Nam", "079075045687", "", "Hà Nội"], "cuong", "swap"),
        (["Võ Thị Hạnh", "25/12/1982", "Nữ", "031182056780", "", "Hà Nội"], "hanh", "typo"),
        (["Phạm Thị Lan", "02/02/2000", "Nữ", "", "", "Hà Nội"], "ambiguous", ""),
        (["Đinh Công Tráng", "03/03/1933", "Nam", "", "", ""], "not_found", ""),
        (["An Nguyễn Văn", "14/03/1988", "Nam", "", "", "Hà Nội"], "duplicate", ""),
        # No number, no marks, the year only and the other sex: the one person of that
        # folded name and year (a rare name, so linked: the typo row's person again).
        (["Vu Thi Hanh", "1982", "Nam", "", "", ""], "duplicate", ""),
        # Given name first, in capitals without marks, born "15/6/75": no number to go by
        # (the swap row's person again).
        (["CUONG VAN HOANG", "15/6/75", "Nam", "", "", ""], "duplicate", "given name first"),
    ]
    extract = root / "extract.csv"
    with extract.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for r in rows[1:]:
            writer.writerow([r[0], r[1], r[2], r[3], r[4], r[5], r[7]])
        for i, (values, _expected, _why) in enumerate(hand, 1):
            writer.writerow([f"HAND{i}", *values])
    register = population_register(population, root / "registers")
    return {
        "root": root,
        "extract": extract,
        "truth": root / "generated.truth.parquet",
        "register": register,
        "hand": {base + i: (expected, why) for i, (_v, expected, why) in enumerate(hand, 1)},
        "ids": {k: v[0] for k, v in crafted.items()},
    }


def _run(world: dict[str, object], out: Path, **options: object) -> runner.Summary:
    register = world["register"]
    assert isinstance(register, RegisterFiles)
    outputs = runner.Outputs.beside(out)
    return runner.run(
        Path(str(world["extract"])),
        lambda: register,
        outputs,
        out.with_name(out.name + ".work"),
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def result(world: dict[str, object]) -> tuple[runner.Summary, dict[int, dict[str, object]]]:
    out = Path(str(world["root"])) / "result.parquet"
    summary = _run(world, out)
    rows = {r["row_no"]: r for r in pq.read_table(out).to_pylist()}
    return summary, rows


def test_every_row_gets_exactly_one_verdict(
    world: dict[str, object], result: tuple[runner.Summary, dict[int, dict[str, object]]]
) -> None:
    summary, rows = result
    assert len(rows) == summary.rows == 811
    assert sorted(rows) == list(range(1, 812))
    assert {r["verdict"] for r in rows.values()} <= set(VERDICTS)
    assert sum(summary.verdicts.values()) == summary.rows


def test_hand_worked_rows(
    world: dict[str, object], result: tuple[runner.Summary, dict[int, dict[str, object]]]
) -> None:
    _summary, rows = result
    ids = world["ids"]
    assert isinstance(ids, dict)
    hand = world["hand"]
    assert isinstance(hand, dict)
    got = {row_no: rows[row_no] for row_no in hand}
    first, zeros, cmnd, dead, swap, typo, twins, nobody, again, unsure, western = sorted(got)
    assert (got[first]["verdict"], got[first]["personal_id"]) == ("matched", ids["an"])
    assert got[first]["differences"] is None and got[first]["pass"] == 1
    assert (got[zeros]["personal_id"], got[zeros]["pass"]) == (ids["hoa"], 2)
    assert got[zeros]["verdict"] == "matched_with_differences"
    assert got[zeros]["differences"] == "id_leading_zeros|name_no_diacritics"
    assert got[zeros]["register_full_name"] == "Trần Thị Hoà"  # what to write instead
    # The same person by her old CMND: a duplicate of the row before; tone placement (Hòa /
    # Hoà) is formatting, not a difference.
    assert (got[cmnd]["verdict"], got[cmnd]["duplicate_of"]) == ("duplicate", zeros)
    assert got[cmnd]["differences"] == "id_old_cmnd"
    assert (got[dead]["verdict"], str(got[dead]["death_date"])) == ("deceased", "2024-05-01")
    assert (got[swap]["personal_id"], got[swap]["pass"]) == (ids["cuong"], 2)
    assert got[swap]["differences"] == "id_transposed"
    assert got[typo]["personal_id"] == ids["hanh"]
    assert got[typo]["differences"] == "id_typo|name_variant"
    assert got[typo]["register_full_name"] == "Vũ Thị Hạnh"
    assert got[twins]["verdict"] == "ambiguous" and got[twins]["personal_id"] is None
    assert {c.split(":")[0] for c in str(got[twins]["candidates"]).split(";")} == {
        ids["lan1"],
        ids["lan2"],
    }
    assert (got[nobody]["verdict"], got[nobody]["personal_id"]) == ("not_found", None)
    assert (got[again]["verdict"], got[again]["duplicate_of"]) == ("duplicate", first)
    assert (got[again]["pass"], got[again]["differences"]) == (3, "id_missing|name_order")
    assert (got[unsure]["verdict"], got[unsure]["personal_id"]) == ("duplicate", ids["hanh"])
    assert got[unsure]["duplicate_of"] == typo
    # Keyed in Vietnamese order, the name agrees word for word; the order is still reported.
    assert (got[western]["verdict"], got[western]["personal_id"]) == ("duplicate", ids["cuong"])
    assert (got[western]["duplicate_of"], got[western]["pass"]) == (swap, 3)
    assert got[western]["differences"] == "id_missing|name_no_diacritics|name_order"
    assert got[western]["register_full_name"] == "Hoàng Văn Cường"


def test_ambiguous_means_two_plausible_candidates_and_needs_review_one(
    result: tuple[runner.Summary, dict[int, dict[str, object]]],
) -> None:
    _summary, rows = result

    def plausible(row: dict[str, object]) -> int:
        listed = str(row["candidates"]).split(";")
        return sum(1 for c in listed if float(c.split(":")[1]) >= pipeline.PLAUSIBLE)

    ambiguous = [r for r in rows.values() if r["verdict"] == "ambiguous"]
    review = [r for r in rows.values() if r["verdict"] == "needs_review"]
    assert ambiguous
    assert all(plausible(r) >= 2 and r["personal_id"] is None for r in ambiguous)
    assert all(plausible(r) == 1 and r["personal_id"] is None for r in review)


def test_accuracy_against_the_truth(
    world: dict[str, object], result: tuple[runner.Summary, dict[int, dict[str, object]]]
) -> None:
    _summary, rows = result
    truth = pq.read_table(str(world["truth"])).to_pylist()
    linked = [(t, rows[t["row_no"]]) for t in truth if rows[t["row_no"]]["personal_id"]]
    right = sum(1 for t, r in linked if r["personal_id"] == t["true_personal_id"])
    findable = [t for t in truth if t["true_personal_id"] and t["expected_verdict"] != "ambiguous"]
    assert right / len(linked) >= 0.995
    assert right / len(findable) >= 0.97
    not_found = [t for t in truth if t["expected_verdict"] == "not_found"]
    assert all(rows[t["row_no"]]["verdict"] != "matched" for t in not_found)


def test_summary_and_correction_file(
    world: dict[str, object], result: tuple[runner.Summary, dict[int, dict[str, object]]]
) -> None:
    summary, rows = result
    root = Path(str(world["root"]))
    saved = json.loads((root / "result.summary.json").read_text(encoding="utf-8"))
    assert saved["verdicts"] == summary.verdicts and saved["rows"] == 811
    assert summary.mapping["full_name"] == "ho_ten"
    assert summary.samples["matched"] and len(summary.samples["matched"]) <= runner.SAMPLE_ROWS
    assert sum(p["rows"] for p in summary.provinces) == 811
    assert summary.differences.get("id_leading_zeros", 0) >= 1
    with (root / "result.corrections.csv").open(encoding="utf-8") as f:
        corrections = list(csv.DictReader(f))
    # Under the agency's own headers, only the rows to correct, the register's values.
    assert {"ma_ho_so", "ho_ten", "ngay_sinh", "so_dinh_danh", "tinh_thanh"} <= set(corrections[0])
    to_fix = {
        r["row_no"]
        for r in rows.values()
        if r["verdict"] in ("matched_with_differences", "deceased")
    }
    assert {int(c["row_no"]) for c in corrections} == to_fix
    hand = world["hand"]
    assert isinstance(hand, dict)
    zeros = sorted(hand)[1]
    fix = next(c for c in corrections if int(c["row_no"]) == zeros)
    assert fix["so_dinh_danh"] == world["ids"]["hoa"]  # type: ignore[index]
    assert fix["ho_ten"] == "Trần Thị Hoà" and fix["ngay_sinh"] == ""  # the date agreed


def test_a_durable_run_resumes_after_a_crash(world: dict[str, object]) -> None:
    out = Path(str(world["root"])) / "resumed.csv"
    seen: list[str] = []

    def crash(stage: str, done: int, total: int, detail: str) -> None:
        if stage == "match":
            seen.append(detail)
            if detail == "k3":
                raise KeyboardInterrupt  # the process dies mid-run

    with pytest.raises(KeyboardInterrupt):
        _run(world, out, durable=True, progress=crash)
    assert not out.exists()  # nothing that looks finished
    work = out.with_name(out.name + ".work") / "duckdb" / "work.duckdb"
    with duckdb.connect(str(work), read_only=True) as con:
        done = {r[0] for r in con.execute("SELECT name FROM _dancu_steps").fetchall()}
    assert "s2" in done and "result" not in done
    summary = _run(world, out, durable=True)
    assert out.exists() and summary.rows == 811
    first = Path(str(world["root"])) / "result.parquet"
    again = {r["row_no"]: r["verdict"] for r in pq.read_table(first).to_pylist()}
    with out.open(encoding="utf-8") as f:
        assert {int(r["row_no"]): r["verdict"] for r in csv.DictReader(f)} == again


_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.tuples(_TEXT, _TEXT, _TEXT, _TEXT, _TEXT), min_size=1, max_size=40))
def test_no_row_is_ever_lost(world: dict[str, object], values: list[tuple[str, ...]]) -> None:
    """Whatever an agency's cells hold, every row comes back once, with one verdict."""
    root = Path(str(world["root"])) / "property"
    root.mkdir(exist_ok=True)
    extract = root / "extract.parquet"
    import pyarrow as pa

    names = ["ho_ten", "ngay_sinh", "gioi_tinh", "so_dinh_danh", "tinh_thanh"]
    table = pa.table({n: [v[i] for v in values] for i, n in enumerate(names)})
    pq.write_table(table, extract)
    register = world["register"]
    assert isinstance(register, RegisterFiles)
    out = root / "result.parquet"

    def reconcile() -> runner.Summary:
        return runner.run(
            extract,
            lambda: register,
            runner.Outputs(out),
            root / "work",
            mapping={"full_name": "ho_ten", "birth_date": "ngay_sinh"},
        )

    if all(not (v[0] + v[1]).strip() for v in values):
        with pytest.raises(ExtractError):  # only blank rows: refused, not "0 rows"
            reconcile()
        return
    summary = reconcile()
    got = pq.read_table(out).to_pylist()
    blank = summary.blank_rows
    assert len(got) + blank == len(values) == summary.rows + blank
    assert len({r["row_no"] for r in got}) == len(got)
    assert all(r["verdict"] in VERDICTS for r in got)


@pytest.mark.spark
def test_spark_gives_the_same_verdicts(
    world: dict[str, object], result: tuple[runner.Summary, dict[int, dict[str, object]]]
) -> None:
    """The same steps on PySpark (local mode): the SQL translated by sqlglot, the dc_*
    functions defined as Spark SQL functions; every row's verdict, number, confidence,
    differences and candidates as DuckDB's."""
    summary, rows = result
    out = Path(str(world["root"])) / "spark.parquet"
    spark = _run(world, out, engine="spark")
    assert spark.verdicts == summary.verdicts
    got = {r["row_no"]: r for r in pq.read_table(out).to_pylist()}
    assert sorted(got) == sorted(rows)
    for row_no, ours in rows.items():
        theirs = got[row_no]
        for column in ("verdict", "personal_id", "differences", "candidates", "duplicate_of"):
            assert theirs[column] == ours[column], (row_no, column)
        if ours["confidence"] is not None:
            assert abs(float(theirs["confidence"]) - float(ours["confidence"])) < 1e-6


def test_an_extract_without_numbers_still_matches(world: dict[str, object]) -> None:
    """No personal ID or CMND column (a telco's list, say): nothing to learn m from, so the
    model's prior shares carry it; names, dates, sex and province still link most rows."""
    out = Path(str(world["root"])) / "no-numbers.parquet"
    summary = _run(world, out, mapping={"personal_id": "", "old_id": ""})
    assert "personal_id" not in summary.mapping and summary.passes.get("exact-id") is None
    got = {r["row_no"]: r for r in pq.read_table(out).to_pylist()}
    truth = pq.read_table(str(world["truth"])).to_pylist()
    linked = [t for t in truth if got[t["row_no"]]["personal_id"]]
    right = sum(1 for t in linked if got[t["row_no"]]["personal_id"] == t["true_personal_id"])
    findable = [t for t in truth if t["true_personal_id"] and t["expected_verdict"] != "ambiguous"]
    assert right / len(linked) >= 0.99
    assert right / len(findable) >= 0.8
