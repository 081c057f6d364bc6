"""Dated export rules: embargoed destinations and ECCN licence requirements per destination country.

Rules are data (YAML, ``TURNUP_EXPORT_RULES_PATH``, default ``data/export_rules.yaml``). ``check_export``
applies those in force on a given date.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from turnup.kernel.errors import InvalidInput


@dataclass(frozen=True)
class ExportFinding:
    kind: str  # "embargo" | "licence_required"
    rule_id: str
    destination_country: str
    eccn: str | None
    reason: str
    valid_from: date
    valid_until: date | None

    def describe(self) -> str:
        what = f"ECCN {self.eccn} to {self.destination_country}" if self.eccn else self.destination_country
        return f"{self.kind} ({self.rule_id}): {what}: {self.reason}"


@dataclass(frozen=True)
class _Rule:
    rule_id: str
    kind: str
    countries: frozenset[str]
    eccn_pattern: str | None
    valid_from: date
    valid_until: date | None
    reason: str

    def in_force(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_until is None or on <= self.valid_until)


def _date(value: Any, where: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def parse_rules(document: dict[str, Any], source: str = "rules") -> list[_Rule]:
    groups = {k: {c.upper() for c in v} for k, v in (document.get("country_groups") or {}).items()}

    def expand(items: list[str], where: str) -> frozenset[str]:
        out: set[str] = set()
        for item in items:
            if item.startswith("group:"):
                if item[6:] not in groups:
                    raise InvalidInput(f"{where}: unknown country group {item[6:]!r}")
                out |= groups[item[6:]]
            else:
                out.add(item.upper())
        return frozenset(out)

    rules: list[_Rule] = []
    for i, item in enumerate(document.get("embargoes") or []):
        where = f"{source}: embargoes[{i}]"
        start = _date(item.get("from"), f"{where}.from")
        if start is None:
            raise InvalidInput(f"{where}.from: required")
        rules.append(
            _Rule(
                item["id"],
                "embargo",
                expand([item["country"]], where),
                None,
                start,
                _date(item.get("until"), f"{where}.until"),
                item.get("reason", "embargo"),
            )
        )
    for i, item in enumerate(document.get("licence_rules") or []):
        where = f"{source}: licence_rules[{i}]"
        start = _date(item.get("from"), f"{where}.from")
        if start is None:
            raise InvalidInput(f"{where}.from: required")
        rules.append(
            _Rule(
                item["id"],
                "licence_required",
                expand(item.get("destinations") or [], where),
                str(item["eccn"]),
                start,
                _date(item.get("until"), f"{where}.until"),
                item.get("reason", "licence required"),
            )
        )
    return rules


_cache: dict[tuple[str, float], list[_Rule]] = {}


def load_rules(path: Path) -> list[_Rule]:
    key = (str(path), path.stat().st_mtime)
    if key not in _cache:
        _cache.clear()
        _cache[key] = parse_rules(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, path.name)
    return _cache[key]


def evaluate(
    rules: list[_Rule], *, eccn: str | None, destination_country: str, on_date: date
) -> list[ExportFinding]:
    country = destination_country.upper()
    findings: list[ExportFinding] = []
    for rule in rules:
        if country not in rule.countries or not rule.in_force(on_date):
            continue
        if rule.kind == "licence_required" and (
            not eccn or eccn.upper() == "EAR99" or not fnmatch.fnmatchcase(eccn, rule.eccn_pattern or "")
        ):
            continue
        findings.append(
            ExportFinding(
                rule.kind, rule.rule_id, country, eccn, rule.reason, rule.valid_from, rule.valid_until
            )
        )
    return sorted(findings, key=lambda f: (f.kind != "embargo", f.rule_id))
