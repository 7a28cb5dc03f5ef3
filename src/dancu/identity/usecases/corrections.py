"""The citizen's requests to correct the register, and the officers' side of them. A request
belongs to the commune police of the person's permanent residence (it keeps that commune,
and follows the person when they move), who close it once the register was corrected, or
refuse it with a note telling the citizen why.
"""

from __future__ import annotations

from sqlalchemy import select

from dancu.core.access import OfficerContext, Role
from dancu.core.audit import Entry, record_change
from dancu.core.db import write_session
from dancu.core.errors import Conflict, Invalid, NotFound
from dancu.core.timeutil import utcnow
from dancu.identity import schemas as s
from dancu.identity.models import Account, CorrectionRequest
from dancu.identity.usecases.shared import (
    PeopleUseCase,
    add_event,
    citizen_account,
    citizen_entry,
    find_account,
    officer_note,
    refuse,
    require_account_writer,
    subject,
)
from dancu.registry.schemas import PersonPublic


class Corrections(PeopleUseCase):
    # -- the citizen's requests -----------------------------------------------------------

    def request_correction(self, personal_id: str, data: s.CorrectionRequestIn) -> s.CorrectionOut:
        """The citizen asks for a fact of the register to be corrected; the commune police
        of residence handle it with the citizen's documents (the request keeps the commune
        of permanent residence, see ``open_corrections``). One open request per field."""
        person = self.people.person(personal_id)
        current = _current_value(person, data.field)
        if data.field != "other" and data.proposed.strip().casefold() == current.casefold():
            raise refuse(
                Invalid,
                "correction-same",
                "this is what the register already holds",
                "proposed",
            )
        with write_session(self.factory) as session:
            account = citizen_account(session, personal_id)
            already = session.scalars(
                select(CorrectionRequest.id).where(
                    CorrectionRequest.account_id == account.id,
                    CorrectionRequest.field == data.field,
                    CorrectionRequest.status == "open",
                )
            ).first()
            if already is not None and data.field != "other":
                raise refuse(
                    Conflict,
                    "correction-open",
                    "a request to correct this is already open",
                    "field",
                )
            province, commune = self._residence_scope(person)
            row = CorrectionRequest(
                account_id=account.id,
                field=data.field,
                current_value=current[:300],
                proposed=data.proposed,
                reason=data.reason,
                status="open",
                created_at=utcnow(),
                province_code=province,
                commune_code=commune,
            )
            session.add(row)
            session.flush()
            add_event(session, account, "correction.requested", data.field)
            detail = f"request:{row.id} field:{data.field}"
            record_change(session, citizen_entry("identity.correction_request", account, detail))
            return _correction_out(row)

    def corrections(self, personal_id: str, limit: int = 20) -> list[s.CorrectionOut]:
        """The citizen's correction requests, newest first."""
        with self.factory() as session:
            account = citizen_account(session, personal_id, lock=False)
            rows = session.scalars(
                select(CorrectionRequest)
                .where(CorrectionRequest.account_id == account.id)
                .order_by(CorrectionRequest.created_at.desc(), CorrectionRequest.id.desc())
                .limit(limit)
            )
            return [_correction_out(r) for r in rows]

    def _residence_scope(self, person: PersonPublic) -> tuple[str, str]:
        """The province and commune codes (2025 scheme) of the permanent residence, or
        blanks when the register holds none."""
        for r in person.residences:
            if r.kind == "permanent" and r.valid_to is None:
                unit = self.people.registry.units.get(
                    r.current_unit.scheme, "commune", r.current_unit.code
                )
                if unit is not None:
                    return unit.province_code, unit.code
        return "", ""

    def move(self, personal_id: str, commune_code: str) -> None:
        """The person moved their permanent residence: their open requests go to the new
        commune's officers."""
        unit = self.people.registry.units.get("2025", "commune", commune_code)
        province = unit.province_code if unit is not None else ""
        with write_session(self.factory) as session:
            account = find_account(session, personal_id)
            if account is None:
                return
            for row in session.scalars(
                select(CorrectionRequest).where(
                    CorrectionRequest.account_id == account.id,
                    CorrectionRequest.status == "open",
                )
            ):
                row.province_code, row.commune_code = province, commune_code

    # -- officers -------------------------------------------------------------------------

    def open_corrections(self, ctx: OfficerContext, limit: int = 200) -> list[s.OpenCorrection]:
        """The open correction requests of people whose permanent residence is in the
        officer's area (commune officers: their commune; province officers: their province;
        ministry: all), oldest first. Audited as the officer's read."""
        stmt = (
            select(CorrectionRequest, Account.personal_id)
            .join(Account, Account.id == CorrectionRequest.account_id)
            .where(CorrectionRequest.status == "open")
        )
        if ctx.role is not Role.MINISTRY:
            stmt = stmt.where(CorrectionRequest.province_code == ctx.province_code)
        if ctx.role is Role.COMMUNE:
            stmt = stmt.where(CorrectionRequest.commune_code == ctx.commune_code)
        stmt = stmt.order_by(CorrectionRequest.created_at, CorrectionRequest.id).limit(limit)
        with write_session(self.factory) as session:
            out = [
                s.OpenCorrection(
                    **_correction_out(row).model_dump(),
                    personal_id=number,
                    province_code=row.province_code,
                    commune_code=row.commune_code,
                )
                for row, number in session.execute(stmt)
            ]
            record_change(
                session,
                Entry(
                    ctx.actor("identity-corrections"),
                    "identity.corrections_read",
                    f"unit:{ctx.unit_label}",
                    f"{len(out)} open",
                ),
            )
        return out

    def resolve_correction(
        self, ctx: OfficerContext, request_id: int, outcome: str, note: str = ""
    ) -> s.CorrectionOut:
        """Close a request of the officer's area: ``done`` once the register was corrected
        (with the register's own correction or residence event), or ``refused`` with a note
        telling the citizen why."""
        require_account_writer(ctx)
        if outcome not in ("done", "refused"):
            raise refuse(
                Invalid,
                "correction-outcome",
                "choose whether the register was corrected or the request refused",
                "outcome",
            )
        note = officer_note(note, required=outcome == "refused", limit=300)
        with write_session(self.factory) as session:
            row = session.get(CorrectionRequest, request_id, with_for_update=True)
            if row is None or not ctx.covers(row.province_code, row.commune_code):
                raise refuse(NotFound, "no-correction", "no such correction request in your area")
            if row.status != "open":
                raise refuse(Conflict, "correction-closed", "this request was already closed")
            row.status, row.resolved_at = outcome, utcnow()
            row.resolved_by, row.resolution_note = ctx.username, note
            account = session.get(Account, row.account_id)
            assert account is not None
            add_event(session, account, f"correction.{outcome}", row.field)
            record_change(
                session,
                Entry(
                    ctx.actor("identity-corrections"),
                    "identity.correction_resolve",
                    subject(account),
                    f"request:{row.id} outcome:{outcome} note:{note}",
                ),
            )
            return _correction_out(row)


def _current_value(person: PersonPublic, field: str) -> str:
    """What the register holds for a correctable field, as the citizen sees it."""
    if field == "full_name":
        return person.full_name
    if field == "birth_date":
        return person.birth_date.strftime("%d/%m/%Y")
    if field == "sex":
        return person.sex
    if field == "permanent_address":
        for r in person.residences:
            if r.kind == "permanent":
                return ", ".join(p for p in (r.address_line, r.current_unit.label) if p)
    return ""


def _correction_out(row: CorrectionRequest) -> s.CorrectionOut:
    return s.CorrectionOut.model_validate(row, from_attributes=True)
