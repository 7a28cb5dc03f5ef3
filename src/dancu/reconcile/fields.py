"""What an agency extract holds, in dancu's words: the canonical fields, the headers agencies
use for them (Vietnamese, with or without diacritics, and English), the verdicts a row can
get and the kinds of difference a matched row can carry.

This module is the contract between the extract readers (``readers.py``), the synthetic
extract generator (``synth/extract.py``), the matching pipeline (``pipeline.py``) and the reports.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from dancu.core.names import fold

# -- canonical fields --------------------------------------------------------------------------
# Every field is optional in a given extract, but a usable extract has a name and at least one
# of personal_id / old_id / birth_date (see readers.check_mapping).
Field = Literal[
    "agency_key",  # the agency's own record key (mã hồ sơ, số sổ BHXH, mã khách hàng...)
    "full_name",  # họ, chữ đệm và tên
    "birth_date",  # ngày sinh: dd/mm/yyyy, yyyy-mm-dd, d/m/yyyy, yyyy (year only)...
    "sex",  # giới tính: Nam/Nữ, nam/nu, M/F, 1/0 (see SEX_VALUES)
    "personal_id",  # số định danh cá nhân / số CCCD (12 digits, possibly damaged)
    "old_id",  # số CMND (9 or 12 digits)
    "address",  # địa chỉ (free text)
    "province",  # tỉnh/thành phố: a name (either scheme) or a 2-digit code
]
FIELDS: Final[tuple[Field, ...]] = (
    "agency_key",
    "full_name",
    "birth_date",
    "sex",
    "personal_id",
    "old_id",
    "address",
    "province",
)

# Header synonyms, compared by ``header_key`` (folded, non-alphanumerics removed): "Họ và
# tên", "HO_VA_TEN" and "ho va ten" are all "hovaten". First match wins, in FIELDS order.
HEADER_SYNONYMS: Final[dict[Field, tuple[str, ...]]] = {
    "agency_key": (
        "agency_key",
        "ma_ho_so",
        "ma_doi_tuong",
        "ma_dinh_danh_nganh",
        "ma_khach_hang",
        "ma_kh",
        "ma_so_bhxh",
        "so_bhxh",
        "so_so_bhxh",
        "ma_the_bhyt",
        "ma_so_thue",
        "mst",
        "so_thue_bao",
        "ma_hoc_sinh",
        "ma_ban_ghi",
        "ma_so",
        "record_id",
        "record_key",
        "customer_id",
        "key",
        "id",
    ),
    "full_name": (
        "full_name",
        "ho_ten",
        "ho_va_ten",
        "ho_ten_khai_sinh",
        "ho_chu_dem_va_ten",
        "ho_chu_dem_ten",
        "ten_day_du",
        "ten_cong_dan",
        "name",
        "fullname",
        "ten",
    ),
    "birth_date": (
        "birth_date",
        "ngay_sinh",
        "ngay_thang_nam_sinh",
        "ngay_sinh_dd_mm_yyyy",
        "nam_sinh",
        "date_of_birth",
        "dob",
        "birthdate",
        "birthday",
    ),
    "sex": ("sex", "gioi_tinh", "gioi", "phai", "gender"),
    "personal_id": (
        "personal_id",
        "so_dinh_danh",
        "so_dinh_danh_ca_nhan",
        "so_ddcn",
        "sddcn",
        "so_cccd",
        "cccd",
        "so_can_cuoc",
        "so_can_cuoc_cong_dan",
        "can_cuoc",
        "so_the_can_cuoc",
        "national_id",
        "id_number",
        "pid",
    ),
    "old_id": (
        "old_id",
        "old_id_number",
        "so_cmnd",
        "cmnd",
        "so_cmt",
        "so_chung_minh",
        "so_chung_minh_nhan_dan",
        "cmnd_cu",
    ),
    "address": (
        "address",
        "dia_chi",
        "dia_chi_thuong_tru",
        "noi_thuong_tru",
        "noi_o",
        "noi_o_hien_tai",
        "dia_chi_lien_he",
        "address_line",
    ),
    "province": (
        "province",
        "tinh_thanh",
        "tinh_thanh_pho",
        "tinh_tp",
        "tinh",
        "ma_tinh",
        "province_code",
    ),
}

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def header_key(header: str) -> str:
    """The comparable form of a column header: folded (no diacritics, Đ→D, lower case) with
    everything but letters and digits removed ("Họ và tên" → "hovaten")."""
    return _NON_ALNUM.sub("", fold(header.replace("\ufeff", "")))


# -- verdicts ---------------------------------------------------------------------------------
Verdict = Literal[
    "matched",  # the personal ID number, and the record agrees with the register
    "matched_with_differences",  # the personal ID number, and what to correct
    "deceased",  # the person is dead in the register (with the date)
    "not_found",  # nobody in the register fits
    "ambiguous",  # two or more people fit about as well; the candidates are listed
    "needs_review",  # one person may fit, not surely enough to link: the candidate is listed
    "duplicate",  # an earlier row of the same extract is the same person
]
VERDICTS: Final[tuple[Verdict, ...]] = (
    "matched",
    "matched_with_differences",
    "deceased",
    "not_found",
    "ambiguous",
    "needs_review",
    "duplicate",
)

# -- kinds of difference ----------------------------------------------------------------------
# What a matched row differs in from the register; each is something the agency corrects.
# Formatting alone (case, Unicode composition, spacing, tone-mark placement, the date's
# format, spaces or dashes in a number) is never a difference.
DIFFERENCES: Final[tuple[str, ...]] = (
    "id_missing",  # no personal ID number given
    "id_leading_zeros",  # the number lost its leading zeros (a spreadsheet took it for a number)
    "id_old_cmnd",  # an old CMND number instead of the personal ID number
    "id_reestablished",  # a personal ID number the register has since replaced
    "id_transposed",  # two adjacent digits swapped
    "id_typo",  # one digit wrong
    "id_other",  # another person's number, or a number the register does not know
    "name_no_diacritics",  # the name without its marks
    "name_order",  # the same words in another order (given name first)
    "name_variant",  # Hoàng/Huỳnh, Vũ/Võ and similar variants of one name
    "name_typo",  # a letter wrong, missing or extra
    "name_missing_part",  # a middle name missing
    "name_other",  # a different name
    "dob_swapped",  # day and month swapped
    "dob_year_only",  # only the year given
    "dob_typo",  # another date close to the registered one
    "dob_missing",  # no date of birth given
    "sex_wrong",  # the other sex
    "province_outdated",  # a province of the 63-province scheme (before 1 July 2025)
    "province_wrong",  # a province the person does not live in
)

# Values of the sex column, by their folded form.
SEX_VALUES: Final[dict[str, str]] = {
    "nam": "M",
    "m": "M",
    "male": "M",
    "1": "M",
    "trai": "M",
    "nu": "F",
    "f": "F",
    "female": "F",
    "0": "F",
    "2": "F",
    "gai": "F",
}
