"""What the provider releases for a request: scopes, the claims parameter, grants, consent
and provenance (dancu.identity.claims)."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime

import pytest

from dancu.identity import claims as c
from dancu.registry.schemas import PersonPublic, ResidenceOut, UnitRef


def _person() -> PersonPublic:
    unit = UnitRef(
        code="00004", name="Phường Ba Đình", label="Phường Ba Đình, Thành phố Hà Nội", scheme="2025"
    )
    return PersonPublic(
        personal_id="001088012345",
        full_name="Nguyễn Văn An",
        birth_date=date(1988, 3, 14),
        sex="M",
        **{"nationality": "VN", "ethnicity": "Kinh", "religion": ""},
        marital_status="married",
        status="alive",
        # No death, no recorded birthplace or hometown, no family links.
        **dict.fromkeys(
            ("death_date", "birth_unit", "hometown_unit", "father", "mother", "spouse")
        ),
        residences=[
            ResidenceOut(
                kind="permanent",
                unit=unit,
                current_unit=unit,
                address_line="12 Phố Đội Cấn",
                valid_from=date(2010, 1, 1),
                valid_to=None,
                household_number="HH1",
            )
        ],
        household_number="HH1",
        relationship="head",
        identifiers=[],
    )


SUBJECT = c.Subject(
    _person(), "0912345678", "", 2, datetime(2026, 5, 1, 8, 30, tzinfo=UTC), b"face-bytes"
)


def test_scopes_give_their_claims_and_sensitive_ones_need_a_grant() -> None:
    none = c.ClaimsRequest.parse({})
    assert c.attributes(["openid", "profile"], none, []) == [
        "name",
        "birthdate",
        "gender",
        "updated_at",
    ]
    assert "personal_id" in c.attributes(["openid", "profile"], none, ["personal_id"])
    # Asked for by name without profile: only when granted.
    asked = c.ClaimsRequest.parse({"userinfo": {"picture": None, "birthdate": None}})
    assert c.attributes(["openid"], asked, []) == ["birthdate"]
    assert c.attributes(["openid"], asked, ["picture"]) == ["picture", "birthdate"]
    # Unknown claims are ignored (Core 5.5: "not understood" means not returned).
    odd = c.ClaimsRequest.parse({"userinfo": {"shoe_size": None}})
    assert c.attributes(["openid"], odd, []) == []
    # Companions ride along without a consent line of their own.
    assert c.consent_lines(["name", "updated_at", "phone_number", "phone_number_verified"]) == [
        "name",
        "phone_number",
    ]


@pytest.mark.parametrize(
    "raw",
    [
        {"userinfo": []},
        {"id_token": {"verified_claims": {"verification": {}}}},
        {"userinfo": {"verified_claims": {"claims": {}}}},
        {"userinfo": {"verified_claims": [1]}},
    ],
)
def test_malformed_claims_requests_are_refused(raw: dict[str, object]) -> None:
    with pytest.raises(c.ClaimsRequestError):
        c.ClaimsRequest.parse(raw)


def test_release_is_bounded_by_consent_and_carries_provenance() -> None:
    out = c.release(
        SUBJECT,
        consented=["name", "birthdate", "phone_number", "phone_number_verified"],
        plain=["birthdate", "phone_number", "phone_number_verified", "address"],
        verified=["name", "phone_number", "personal_id"],
    )
    assert out["birthdate"] == "1988-03-14" and out["phone_number"] == "0912345678"
    assert out["phone_number_verified"] is True
    assert "address" not in out  # not consented
    proven = out["verified_claims"]
    # The phone is the account's, not the register's; the number was not consented.
    assert proven["claims"] == {"name": "Nguyễn Văn An"}
    assert proven["verification"] == {
        "trust_framework": "vn_csdlqgdc",
        "assurance_level": "high",
        "time": "2026-05-01T08:30:00+00:00",
        "evidence": [
            {
                "type": "electronic_record",
                "record": {
                    "type": "population_register",
                    "source": {"name": "Cơ sở dữ liệu quốc gia về dân cư", "country_code": "VNM"},
                },
            }
        ],
    }
    # Nothing register-held asked: no verified_claims element at all.
    assert "verified_claims" not in c.release(SUBJECT, ["email"], [], ["email"])


def test_values_shapes() -> None:
    out = c.values(SUBJECT, ["address", "updated_at", "gender", "email", "picture"])
    assert out["address"] == {
        "formatted": "12 Phố Đội Cấn, Phường Ba Đình, Thành phố Hà Nội",
        "country": "VN",
    }
    assert out["updated_at"] == int(datetime(2026, 5, 1, 8, 30, tzinfo=UTC).timestamp())
    assert out["gender"] == "male" and "email" not in out  # no e-mail on file
    assert out["picture"].startswith("data:image/svg+xml;base64,")


def test_portraits_keep_their_image_type() -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"\0" * 20
    assert c.data_uri(jpeg) == "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    assert c.data_uri(b"\x89PNG\r\n").startswith("data:image/png;base64,")
    svg = base64.b64decode(c.data_uri(b"DANCU-SYNTHETIC-FACE:" + bytes(range(32))).split(",")[1])
    assert svg.startswith(b"<svg") and svg == c._pattern(
        b"DANCU-SYNTHETIC-FACE:" + bytes(range(32))
    )
