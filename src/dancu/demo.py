"""``dancu demo seed``: a ready-to-explore register for `make run`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from joserfc.jwk import ECKey
from rich.console import Console
from sqlalchemy import func, select

from dancu.bootstrap import Container
from dancu.core.access import SYSTEM_CONTEXT, OfficerContext, Role
from dancu.core.errors import NotFound
from dancu.core.models import Officer
from dancu.core.officers import create_officer
from dancu.identity.clients import ClientRegistration
from dancu.registry import schemas as s
from dancu.registry.service import RegistryService

console = Console()
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
DEMO_PASSWORD = "dancu-demo-2025"  # noqa: S105  (printed on purpose: demo databases only)
DEMO_PASSCODE = "246813"  # the demo citizen's passcode (demo databases only)
DEMO_RP = "demo-rp"
DEMO_RP_URL = "http://127.0.0.1:8001"
DEMO_OFFICERS = (
    ("admin", "Quản trị Bộ Công an", Role.MINISTRY, ""),
    ("hanoi", "Cán bộ Công an TP Hà Nội", Role.PROVINCE, "01"),
    ("badinh", "Cán bộ Công an phường Ba Đình", Role.COMMUNE, "00004"),
    # An agency's officer for reconciliation (unit field: the agency's code).
    ("bhxh", "Cán bộ Bảo hiểm xã hội Việt Nam", Role.AGENCY, "bhxh"),
)
DEMO_EXTRACT_ROWS = 2000


@demo_app.command("seed")
def demo_seed(
    people: Annotated[int, typer.Option(min=100, help="synthetic people")] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 6,
    rp_url: Annotated[
        str, typer.Option(help="where the demo relying party runs (make demo-oidc: RP_PORT)")
    ] = DEMO_RP_URL,
) -> None:
    """Load a synthetic population and demo officers once (skipped when already seeded),
    and say how many people the register holds."""
    with Container() as container:
        Path(container.settings.data_dir).mkdir(parents=True, exist_ok=True)
        loaded, total = seed_demo(container, people, seed, rp_url)
        citizen, _rp = seed_identity(container, rp_url)
        extract = demo_extract(container, people, seed)
    if loaded:
        console.print(f"[bold]register[/bold]: {total:,} people ({loaded:,} loaded now)")
    else:
        console.print(f"[bold]register[/bold]: {total:,} people (already there; none loaded)")
    console.print(
        "[bold]demo officers[/bold] (password: "
        f"[cyan]{DEMO_PASSWORD}[/cyan]): "
        + ", ".join(f"{u} ({r.value}{' ' + c if c else ''})" for u, _, r, c in DEMO_OFFICERS)
    )
    console.print(
        f"[bold]demo citizen[/bold] (level 2): personal ID [cyan]{citizen}[/cyan], passcode "
        f"[cyan]{DEMO_PASSCODE}[/cyan]; demo service: `make demo-oidc`, then {rp_url}"
    )
    console.print(
        f"[bold]demo extract[/bold] for reconciliation (sign in as bhxh, /reconcile): "
        f"[cyan]{extract}[/cyan]"
    )


def demo_extract(container: Container, people: int, seed: int = 6) -> Path:
    """An agency extract with realistic defects, drawn from the demo population, for trying
    reconciliation (``dancu synth extract``); written once."""
    from dancu.reconcile.synth_extract import generate_extract

    data = Path(container.settings.data_dir)
    out = data / "demo-extract-bhxh.csv"
    if not out.exists():
        population = data / f"sample-{people}-{seed}.parquet"
        if population.exists():
            rows = min(DEMO_EXTRACT_ROWS, max(people // 5, 10))
            generate_extract(population, rows, out, truth=data / "demo-extract-bhxh.truth.parquet")
    return out


def seed_demo(
    container: Container, people: int, seed: int = 6, rp_url: str = DEMO_RP_URL
) -> tuple[int, int]:
    """The demo register: ``people`` synthetic residents, a Ba Đình family with some history
    (so the commune officer has people to look at) and the demo officers. Idempotent.
    Returns how many people were loaded now and how many the register holds."""
    from dancu.registry.bulk.load import import_population
    from dancu.registry.models import PersonCurrent
    from dancu.registry.synth_population import generate_population

    with container.sessions() as session:
        present = session.scalar(select(func.count()).select_from(PersonCurrent)) or 0
    if not present:
        path = Path(container.settings.data_dir) / f"sample-{people}-{seed}.parquet"
        if not path.exists():
            generate_population(people, seed, path)
        import_population(container.engine, path)
        ba_dinh_family(container.registry)
    with container.sessions() as session, session.begin():
        for username, name, role, unit in DEMO_OFFICERS:
            if session.scalar(select(Officer.id).where(Officer.username == username)) is None:
                agency = unit if role is Role.AGENCY else ""
                create_officer(
                    session,
                    container.units,
                    username,
                    name,
                    DEMO_PASSWORD,
                    role,
                    "" if agency else unit,
                    agency=agency,
                )
    seed_identity(container, rp_url)
    with container.sessions() as session:
        total = session.scalar(select(func.count()).select_from(PersonCurrent)) or 0
    return total - present, total


def seed_identity(container: Container, rp_url: str = DEMO_RP_URL) -> tuple[str, str]:
    """A demo citizen with a level-2 account (the Ba Đình family's father, created when the
    register lacks him) holding his infant son's account, and the demo relying party
    (``tools/demo_rp.py``), whose private key is written to the data folder. Returns the
    citizen's personal ID number and the relying party's client id."""
    found = container.registry.search(
        SYSTEM_CONTEXT, "Nguyễn Văn An", birth_date=date(1988, 3, 14), commune_code="00004"
    ).items
    citizen = found[0].personal_id if found else ba_dinh_family(container.registry)["father"]
    try:
        container.identity.account(citizen)
    except NotFound:
        container.identity.provision(citizen, "0912345678", DEMO_PASSCODE, 2)
    # His son's account, which he holds (a parent chooses for whom on a consent screen).
    sons = container.registry.search(
        SYSTEM_CONTEXT, "Nguyễn Minh Khôi", birth_date=date(2025, 9, 2), commune_code="00004"
    ).items
    if sons and not container.guardians.wards(citizen):
        container.guardians.register_child(citizen, sons[0].personal_id)
    config = Path(container.settings.data_dir) / "demo-rp.json"
    try:
        container.clients.get(DEMO_RP)
    except NotFound:
        key = ECKey.generate_key("P-256", parameters={"kid": "demo-rp-1"}, private=True)
        container.clients.register(
            ClientRegistration(
                name="Dịch vụ mẫu (demo)",
                purpose=(
                    "Cho bạn xem một dịch vụ nhận được những thông tin gì khi bạn đăng nhập "
                    "bằng dancu"
                ),
                purpose_en="Show what a service receives when you sign in with dancu",
                client_id=DEMO_RP,
                jwks={"keys": [key.as_dict(private=False)]},
                redirect_uris=[f"{rp_url}/callback"],
                grant_types=["authorization_code", "refresh_token"],
                scopes=["openid", "profile", "address", "phone"],
                claims=["personal_id"],
            )
        )
        config.write_text(
            json.dumps({"client_id": DEMO_RP, "private_jwk": key.as_dict(private=True)})
        )
        config.chmod(0o600)
    return citizen, DEMO_RP


# The Ba Đình family's residents, born in Phường Phúc Xá (00001): full name, date of birth,
# sex, living in Ba Đình since, and the rest of the registration.
BA_DINH_RESIDENTS: dict[str, tuple[str, date, str, date, dict[str, str]]] = {
    "father": (
        "Nguyễn Văn An",
        date(1988, 3, 14),
        "M",
        date(2012, 1, 10),
        {
            "address_line": "Số 5 phố Đội Cấn",
            "old_id_number": "012345678",
            "old_id_issuer": "01",
            "reference": "TT-2012-0110",
        },
    ),
    "mother": (
        "Trần Thị Hoà",
        date(1991, 8, 1),
        "F",
        date(2016, 5, 20),
        {"relationship": "spouse"},
    ),
    "grandmother": (
        "Lê Thị Tuyết",
        date(1950, 2, 2),
        "F",
        date(2012, 1, 10),
        {"relationship": "parent", "marital_status": "widowed"},
    ),
}


def ba_dinh_family(registry: RegistryService) -> dict[str, str]:
    """A family in Phường Ba Đình, Hà Nội (commune 00004) with a marriage, a birth, a move and
    a death on record; returns their personal ID numbers by role."""
    officer = OfficerContext("demo", Role.COMMUNE, "01", "00004")

    def register(role: str, household: str | None = None) -> str:
        # ``household``: the father's, which the mother and the grandmother join.
        name, born, sex, since, more = BA_DINH_RESIDENTS[role]
        registration = s.PersonRegistration.model_validate(
            {
                "full_name": name,
                "birth_date": born,
                "sex": sex,
                "birth_commune_code": "00001",
                "residence_commune_code": "00004",
                "residence_since": since,
                "household_number": household,
                **more,
            }
        )
        return registry.register_person(officer, registration)

    # In this order: the numbers the register gives and its history follow it.
    father = register("father")
    household = registry.get_person(officer, father).household_number
    mother = register("mother", household)
    registry.register_marriage(
        officer,
        s.MarriageRegistration(
            personal_id=father, spouse_personal_id=mother, married_on=date(2016, 5, 1)
        ),
    )
    grandmother = register("grandmother", household)
    child = registry.register_birth(
        officer,
        s.BirthRegistration(
            full_name="Nguyễn Minh Khôi",
            birth_date=date(2025, 9, 2),
            sex="M",
            birth_commune_code="00004",
            mother_personal_id=mother,
            father_personal_id=father,
            reference="KS-2025-0902",
        ),
    )
    registry.register_death(
        officer,
        s.DeathRegistration(
            personal_id=grandmother, death_date=date(2026, 3, 15), reference="KT-2026-0315"
        ),
    )
    return {
        "father": father,
        "mother": mother,
        "child": child,
        "grandmother": grandmother,
        "household": household or "",
    }
