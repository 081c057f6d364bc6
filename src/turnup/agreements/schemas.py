"""Input shapes for agreements (TMF651 subset)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, populate_by_name=True)


class DocumentVersionCreate(Strict):
    """A negotiated (redlined) text becomes the next version; earlier versions stay as they were."""

    content: str = Field(min_length=1, max_length=1_000_000)
    note: str | None = Field(default=None, max_length=2000)


class SignatureCreate(Strict):
    signerName: str = Field(min_length=1, max_length=200)
    signerEmail: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    organisation: str | None = Field(default=None, max_length=200)
    role: Literal["customer", "provider"]
    version: int | None = Field(default=None, ge=1, description="defaults to the current version")
