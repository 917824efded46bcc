"""Request and response shapes of the staff API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TokenRead(BaseModel):
    """An OAuth2 bearer token."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int


class UserRead(BaseModel):
    """A staff account as shown to itself and to admins."""

    model_config = ConfigDict(from_attributes=True)

    username: str
    display_name: str
    role: str
    role_label: str
    department: str | None
    active: bool


class UserCreate(BaseModel):
    """A new account (admin only)."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=10, max_length=256)
    role: str
    department: str | None = None
    display_name: str = Field(default="", max_length=64)


class UserUpdate(BaseModel):
    """Changes to an account (admin only)."""

    model_config = ConfigDict(extra="forbid")

    role: str | None = None
    department: str | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=10, max_length=256)
