"""Request and answer shapes of `POST /api/v1/lookup`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.status.idcard import validate_id_number
from app.status.schemas import ProjectStatusRead


class LookupRequest(BaseModel):
    """Either `{address}` or `{id_number, person_name}`; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    address: str | None = Field(
        default=None, min_length=1, max_length=120, examples=["观象山庄3号楼2单元501"]
    )
    id_number: str | None = Field(default=None, min_length=1, max_length=32)
    person_name: str | None = Field(default=None, min_length=1, max_length=32)

    @field_validator("id_number")
    @classmethod
    def _valid_id(cls, value: str | None) -> str | None:
        # Raises a Chinese ValueError (length, birth date, check digit); 'x' becomes 'X'.
        return validate_id_number(value) if value is not None else None

    @model_validator(mode="after")
    def _one_way(self) -> LookupRequest:
        by_id = self.id_number is not None or self.person_name is not None
        if self.address is not None and by_id:
            raise ValueError("请只用一种方式查询：地址，或者身份证号加姓名")
        if self.address is None and not by_id:
            raise ValueError("请提供房屋地址，或者身份证号和姓名")
        if by_id and (self.id_number is None or self.person_name is None):
            raise ValueError("按身份证号查询时，身份证号和姓名都要填写")
        return self


class LookupProject(BaseModel):
    """The project a lookup found."""

    code: str
    name: str
    aliases: list[str] = []
    district: str = ""
    address: str = ""


class LookupUnit(BaseModel):
    """The home a lookup found: where it is and its transfer state, no owner data (no owner
    name or ID keys, masked or not)."""

    building: str
    unit: str
    room: str
    transfer_status: str
    transfer_status_label: str


class CandidateProject(BaseModel):
    """A project offered when the text fits several."""

    code: str
    name: str


class CandidateUnit(BaseModel):
    """Where a candidate unit is (no owner data)."""

    building: str
    unit: str
    room: str


class Candidate(BaseModel):
    """One ranked candidate of an ambiguous lookup."""

    project: CandidateProject
    unit: CandidateUnit | None = None
    score: float


class LookupRequested(BaseModel):
    """The building, unit and room parsed from the typed address (null: not typed)."""

    building: str | None
    unit: str | None
    room: str | None
    label: str = Field(description="the parsed parts as text, e.g. 9号楼1单元101室")


class LookupRead(BaseModel):
    """`match` is unit, project, ambiguous or none; the other fields depend on it.

    A field that does not apply to the answer is absent (not null).
    """

    match: Literal["unit", "project", "ambiguous", "none"]
    message: str | None = Field(default=None, description="Chinese note for the resident")
    project: LookupProject | None = None
    status: ProjectStatusRead | None = Field(
        default=None,
        description="the project's status, as GET /projects/{code}/status answers it",
    )
    unit: LookupUnit | None = None
    unit_not_found: bool | None = Field(
        default=None,
        description="unit and project matches: true when the typed building/unit/room is not "
        "in the project's ledger (the answer is then about the whole project)",
    )
    units_hint: str | None = Field(
        default=None,
        description="with unit_not_found: what the ledger has, e.g. 观象山庄有1–4号楼",
    )
    requested: LookupRequested | None = Field(
        default=None, description="address lookups: the building/unit/room read from the text"
    )
    candidates: list[Candidate] | None = None
