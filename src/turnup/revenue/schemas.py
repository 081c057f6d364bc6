"""Revenue input models."""

from __future__ import annotations

from datetime import date

from pydantic import ConfigDict, Field

from turnup.kernel.text import InputModel


class PeriodClose(InputModel):
    """Post every ratable period that ended on or before ``through`` (a month-end close)."""

    model_config = ConfigDict(extra="forbid")
    through: date = Field(ge=date(2000, 1, 1), le=date(2999, 12, 31))
