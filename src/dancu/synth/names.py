"""The name lists synthetic people are drawn from, with their frequencies: family names,
middle and given names by sex, ethnicity and religion by province, street names, and the
regional spellings of one family name (Hoàng in the north is Huỳnh in the south).

``people.py`` draws the population from them, ``cast.py`` the people an extract invents, and
``defects.py`` swaps the regional spellings.
"""

from __future__ import annotations

import numpy as np

# Family names: shares from the commonly cited distribution (Nguyễn 38.4 %, Trần 11 %, ...).
FAMILY = {
    "Nguyễn": 38.4,
    "Trần": 11.0,
    "Lê": 9.5,
    "Phạm": 7.1,
    "Hoàng": 3.1,
    "Huỳnh": 2.0,
    "Phan": 4.5,
    "Vũ": 2.0,
    "Võ": 1.9,
    "Đặng": 2.1,
    "Bùi": 2.0,
    "Đỗ": 1.4,
    "Hồ": 1.3,
    "Ngô": 1.3,
    "Dương": 1.0,
    "Lý": 0.5,
    "Đinh": 0.6,
    "Trương": 0.6,
    "Đào": 0.5,
    "Lương": 0.4,
    "Mai": 0.4,
    "Trịnh": 0.4,
    "Lâm": 0.3,
    "Phùng": 0.2,
    "Tạ": 0.2,
    "Cao": 0.3,
    "Hà": 0.3,
    "Đoàn": 0.4,
    "Vương": 0.2,
    "Tô": 0.2,
    "Châu": 0.2,
    "Kiều": 0.1,
    "Thái": 0.2,
    "Quách": 0.1,
    "Lò": 0.1,
    "Sùng": 0.1,
    "Hứa": 0.1,
    "Lục": 0.1,
    "Triệu": 0.2,
    "Nông": 0.2,
}
MIDDLE_M = {
    "Văn": 30,
    "Đức": 8,
    "Minh": 10,
    "Quang": 7,
    "Hữu": 6,
    "Công": 5,
    "Thành": 5,
    "Ngọc": 3,
    "Xuân": 3,
    "Anh": 4,
    "Hoàng": 3,
    "Tuấn": 2,
    "Gia": 3,
    "Trọng": 3,
    "Bảo": 3,
    "Đình": 4,
}
MIDDLE_F = {
    "Thị": 40,
    "Ngọc": 8,
    "Thu": 6,
    "Thanh": 6,
    "Minh": 4,
    "Phương": 3,
    "Kim": 4,
    "Thúy": 3,
    "Bảo": 3,
    "Hoài": 2,
    "Khánh": 2,
    "Mai": 2,
    "Hồng": 3,
    "Diệu": 2,
}
GIVEN_M = {
    "Hùng": 6,
    "Dũng": 6,
    "Minh": 7,
    "Tuấn": 7,
    "Nam": 6,
    "Hải": 6,
    "Long": 5,
    "Quân": 4,
    "Huy": 6,
    "Khang": 3,
    "Phúc": 4,
    "Bảo": 3,
    "Đức": 5,
    "Thắng": 4,
    "Sơn": 5,
    "Tùng": 4,
    "Hiếu": 4,
    "Trung": 5,
    "Cường": 5,
    "Hòa": 3,
    "Vinh": 4,
    "Thành": 5,
    "Kiên": 3,
    "Phong": 3,
    "Lâm": 2,
    "An": 4,
    "Khoa": 3,
    "Đạt": 4,
    "Tài": 3,
    "Nghĩa": 3,
    "Quý": 2,
    "Thịnh": 2,
    "Toàn": 3,
    "Việt": 3,
    "Hưng": 3,
}
GIVEN_F = {
    "Lan": 5,
    "Hương": 6,
    "Hoa": 4,
    "Mai": 5,
    "Linh": 7,
    "Trang": 7,
    "Hà": 5,
    "Ngọc": 4,
    "Anh": 6,
    "Thảo": 5,
    "Vy": 4,
    "Hạnh": 4,
    "Nhung": 3,
    "Huyền": 5,
    "Yến": 4,
    "Phương": 5,
    "Thủy": 5,
    "Hằng": 5,
    "Dung": 4,
    "Nga": 4,
    "Nhi": 4,
    "Châu": 2,
    "Quỳnh": 3,
    "Giang": 3,
    "Loan": 3,
    "Hòa": 2,
    "Thư": 3,
    "Diệp": 1,
    "Uyên": 2,
    "My": 3,
    "Oanh": 2,
    "Tuyết": 2,
    "Hiền": 4,
}
FOURTH = {"M": MIDDLE_M, "F": {"Thu": 3, "Ngọc": 3, "Minh": 2, "Thanh": 3, "Bảo": 2}}

# Ethnicity by province (legacy code); the rest of each province is Kinh. Shares are
# rounded from the 2019 census; the point is realistic variety, not exact figures.
ETHNIC = {
    "02": {"H'Mông": 33, "Tày": 23, "Dao": 15, "Nùng": 9},
    "04": {"Tày": 40, "Nùng": 31, "H'Mông": 10, "Dao": 10},
    "06": {"Tày": 52, "Dao": 17, "Nùng": 9, "H'Mông": 7},
    "08": {"Tày": 25, "Dao": 12, "Sán Chay": 8},
    "10": {"H'Mông": 25, "Tày": 15, "Dao": 14, "Giáy": 5},
    "11": {"Thái": 38, "H'Mông": 37},
    "12": {"H'Mông": 40, "Thái": 33, "Dao": 14},
    "14": {"Thái": 53, "H'Mông": 17, "Mường": 8},
    "15": {"Tày": 18, "Dao": 11, "H'Mông": 11, "Thái": 6},
    "17": {"Mường": 64},
    "20": {"Nùng": 42, "Tày": 35, "Dao": 4},
    "62": {"Xơ Đăng": 25, "Ba Na": 12, "Gié Triêng": 7},
    "64": {"Gia Rai": 34, "Ba Na": 12},
    "66": {"Ê Đê": 17, "Nùng": 4, "Tày": 3},
    "67": {"M'Nông": 10, "Nùng": 6, "Tày": 5},
    "68": {"Cơ Ho": 12, "Mạ": 3},
    "84": {"Khmer": 32},
    "94": {"Khmer": 30, "Hoa": 3},
    "95": {"Khmer": 8},
    "91": {"Khmer": 12},
    "89": {"Khmer": 4, "Chăm": 1},
    "79": {"Hoa": 4},
    "38": {"Mường": 9, "Thái": 6},
    "40": {"Thái": 9},
}
# Religion: about 73 % declare none (empty); the rest by region.
RELIGION_DEFAULT = {"": 79, "Phật giáo": 13, "Công giáo": 7, "Tin lành": 1}
RELIGION = {
    "89": {"": 40, "Phật giáo Hòa Hảo": 45, "Phật giáo": 12, "Công giáo": 3},
    "72": {"": 55, "Cao Đài": 30, "Phật giáo": 12, "Công giáo": 3},
    "36": {"": 70, "Công giáo": 25, "Phật giáo": 5},
    "37": {"": 70, "Công giáo": 22, "Phật giáo": 8},
    "75": {"": 50, "Công giáo": 30, "Phật giáo": 17, "Tin lành": 3},
    "79": {"": 60, "Phật giáo": 20, "Công giáo": 15, "Cao Đài": 3, "Tin lành": 2},
    "66": {"": 65, "Công giáo": 13, "Tin lành": 14, "Phật giáo": 8},
}
STREETS = np.array(
    [
        "Lê Lợi",
        "Trần Hưng Đạo",
        "Nguyễn Trãi",
        "Hai Bà Trưng",
        "Quang Trung",
        "Lý Thường Kiệt",
        "Hùng Vương",
        "Phan Chu Trinh",
        "Nguyễn Huệ",
        "Điện Biên Phủ",
        "Lê Duẩn",
        "Võ Thị Sáu",
        "Bà Triệu",
        "Ngô Quyền",
    ]
)
# Regional spellings of one family name, either way round.
VARIANTS = {"Hoàng": "Huỳnh", "Huỳnh": "Hoàng", "Vũ": "Võ", "Võ": "Vũ"}


def choice(
    rng: np.random.Generator, table: dict[str, float] | dict[str, int], n: int
) -> np.ndarray:
    """``n`` values drawn from ``table``'s keys with its values as weights."""
    names = np.array(list(table))
    weights = np.array(list(table.values()), dtype=float)
    return names[rng.choice(len(names), size=n, p=weights / weights.sum())]
