"""Input shapes for the compliance API."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from turnup.accounts import Country, Strict


class CaseResolution(Strict):
    reason: str = Field(min_length=3, max_length=2000)


class ScreenRequest(Strict):
    name: str = Field(min_length=1, max_length=300)
    country: Country | None = None


class ExportCheckRequest(Strict):
    eccn: str | None = Field(default=None, max_length=40)
    destinationCountry: Country
    onDate: date | None = None


class ScreeningListUpload(Strict):
    name: str = Field(min_length=1, max_length=300)
    content: str = Field(min_length=1, description="CSV text in the Consolidated Screening List layout")
