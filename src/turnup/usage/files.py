"""Reading a usage file (CSV or JSON) into numbered records for ``import_usage``.

- CSV: a header line ``id,usageDate,usageType,quantity,serviceId`` (optionally ``,description``), then one
  record per line; line numbers count the header as line 1.
- JSON: an array of TMF635 ``Usage`` records (or ``{"usage": [...]}``); "line" is the record's position
  (1-based).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from turnup.kernel.errors import InvalidInput
from turnup.usage.schemas import CSV_COLUMNS, UsageProblem, csv_row_to_doc

CSV_OPTIONAL = ("description",)


def read_records(text: str, kind: str) -> Iterator[tuple[int, Any]]:
    """(line, record document — or the ``UsageProblem`` of a malformed CSV line) pairs; ``InvalidInput``
    when the file as a whole cannot be read."""
    if kind == "json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"file: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if isinstance(doc, dict) and isinstance(doc.get("usage"), list):
            doc = doc["usage"]
        if not isinstance(doc, list):
            raise InvalidInput('file: a JSON usage file is an array of usage records (or {"usage": [...]})')
        yield from enumerate(doc, start=1)
        return
    if kind != "csv":
        raise InvalidInput(f"file: unsupported kind {kind!r} (csv or json)")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip() for h in header]
    missing = [c for c in CSV_COLUMNS if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS and c not in CSV_OPTIONAL]
    if missing or unknown:
        raise InvalidInput(
            f"file: the CSV header must be {','.join(CSV_COLUMNS)}[,description]"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(unknown)}" if unknown else "")
        )
    for number, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield number, UsageProblem("line", f"expected {len(header)} columns, got {len(row)}")
            continue
        yield number, csv_row_to_doc(dict(zip(header, (cell.strip() for cell in row), strict=True)))


def kind_of(content_type: str | None, name: str | None = None) -> str:
    """``csv`` or ``json`` from a content type (or a file name)."""
    text = (content_type or "").split(";")[0].strip().lower()
    if text in ("text/csv", "application/csv"):
        return "csv"
    if text in ("application/json", ""):
        if name and name.lower().endswith(".csv"):
            return "csv"
        return "json"
    raise InvalidInput(f"Content-Type {text!r} is not supported: text/csv or application/json")
