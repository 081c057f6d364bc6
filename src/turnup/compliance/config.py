"""Compliance settings, read from TURNUP_* environment variables on every call (cheap; tests can change
them)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path(__file__).parent / "data"
SAMPLE_LIST = DATA_DIR / "sample_screening_list.csv"
SAMPLE_RULES = DATA_DIR / "export_rules.yaml"


class ComplianceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TURNUP_", env_file=None, extra="ignore")

    # The screening list used until one is loaded into the database (``turnup compliance load-list``).
    screening_list_path: str | None = None
    # Dated embargo and ECCN licence rules (YAML).
    export_rules_path: str | None = None
    # A candidate whose final score (0-100, after guards and penalties) reaches this is a hit.
    screening_threshold: float = 85.0

    def list_path(self) -> Path:
        return Path(self.screening_list_path) if self.screening_list_path else SAMPLE_LIST

    def rules_path(self) -> Path:
        return Path(self.export_rules_path) if self.export_rules_path else SAMPLE_RULES


def compliance_settings() -> ComplianceSettings:
    return ComplianceSettings()
