"""Input shapes for the user and API token administration API."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from turnup.kernel.text import InputModel


class UserCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=100)
    displayName: str | None = Field(default=None, max_length=200)
    password: str | None = Field(default=None, max_length=200)
    roles: list[str] = Field(default_factory=lambda: ["viewer"], min_length=1)


class ApiTokenCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=100)
    name: str = Field(default="api", min_length=1, max_length=100)
    roles: list[str] | None = Field(default=None, description="scope: a subset of the user's roles")
    expiresInDays: float | None = Field(default=None, gt=0, le=3650)
