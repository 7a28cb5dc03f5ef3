"""What the reconciliation API and pages exchange."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class JobOut(BaseModel):
    """A reconciliation job: the extract sent, its state and progress, and when done the
    verdict counts (the summary and files are separate resources)."""

    id: int
    agency: str
    label: str
    created_by: str
    status: str  # draft | queued | running | done | failed
    stage: str = ""  # read | register | match | write | done
    step: str = ""  # the pipeline step running
    steps_done: int = 0
    steps_total: int = 0
    rows: int = 0
    format: str = ""
    headers: list[str] = Field(default_factory=list)
    sample: list[list[str]] = Field(default_factory=list)
    mapping: dict[str, str] = Field(default_factory=dict)  # canonical field → header
    guesses: dict[str, str] = Field(default_factory=dict)  # field → profile|exact|prefix|values
    counts: dict[str, Any] = Field(
        default_factory=dict,
        description="rows per verdict once done: matched, matched_with_differences, deceased, "
        "not_found, ambiguous (two or more people fit), needs_review (one person may fit, not "
        "surely enough to link), duplicate",
    )
    error: str = ""
    created_at: datetime
    finished_at: datetime | None = None

    @property
    def percent(self) -> int:
        """Progress for a bar: reading and the register first, then the steps."""
        if self.status == "done":
            return 100
        stages = {"read": 5, "register": 15, "write": 95}
        if self.stage == "match" and self.steps_total:
            return 20 + int(75 * self.steps_done / self.steps_total)
        return stages.get(self.stage, 0)


class MappingIn(BaseModel):
    """The confirmed columns: canonical field → the file's header (empty: not in the file)."""

    mapping: dict[str, str]


class DuplicateOut(BaseModel):
    """Two people of the register who are likely one, and the review."""

    id: int
    personal_id_a: str
    personal_id_b: str
    score: float
    agreement: str
    province_code: str
    status: str
    decided_by: str = ""
    decided_at: datetime | None = None
    note: str = ""
    merge_id: int | None = None  # the register's merge, when merged (undo: its id)
    survivor_personal_id: str = ""  # the record that stayed
