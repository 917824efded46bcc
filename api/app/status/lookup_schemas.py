"""Request and answer shapes of `POST /api/v1/lookup`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.status.idcard import validate_id_number


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
    """The home a lookup found; owner name and ID masked."""

    building: str
    unit: str
    room: str
    transfer_status: str
    transfer_status_label: str
    owner_name: str
    id_number: str = Field(description="masked to the last four characters")


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


class LookupRead(BaseModel):
    """`match` is unit, project, ambiguous or none; the other fields depend on it."""

    match: Literal["unit", "project", "ambiguous", "none"]
    message: str | None = Field(default=None, description="Chinese note for the resident")
    project: LookupProject | None = None
    status: dict[str, Any] | None = Field(default=None, description="the project's status")
    unit: LookupUnit | None = None
    candidates: list[Candidate] | None = None
