"""Schemathesis checks for the API fuzzer (loaded with ``SCHEMATHESIS_HOOKS=tests.support.fuzz_checks``).

- ``tmf_error``: every 4xx/5xx answer is a TMF ``Error`` (JSON object with ``@type: Error``, ``code``,
  ``reason``, ``message`` and ``status`` equal to the HTTP status).
- ``api_hygiene_headers``: every answer carries ``Cache-Control: no-store`` and ``X-Content-Type-Options:
  nosniff``.
- ``every_role``: the same generated request is sent again with the bearer token of every other role
  (``TURNUP_FUZZ_ROLE_TOKENS``, JSON ``{role: token}``) and each answer must pass the three checks above;
  each ``role status`` is appended to the file ``TURNUP_FUZZ_LOG`` so the test can see every role ran.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis


def _header(response: Any, name: str) -> str | None:
    for key, value in response.headers.items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return None


def _problems(response: Any) -> list[str]:
    found: list[str] = []
    status = int(response.status_code)
    if status >= 500:
        found.append(f"server error {status}")
    if status >= 400:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("@type") != "Error":
            found.append(f"{status} answer is not a TMF Error: {response.text[:200]!r}")
        else:
            missing = [key for key in ("code", "reason", "message", "status") if not body.get(key)]
            if missing:
                found.append(f"{status} TMF Error lacks {missing}")
            elif body["status"] != str(status):
                found.append(f"TMF Error status {body['status']!r} differs from HTTP {status}")
    if _header(response, "cache-control") != "no-store":
        found.append(f"Cache-Control is {_header(response, 'cache-control')!r}, not 'no-store'")
    if _header(response, "x-content-type-options") != "nosniff":
        found.append("X-Content-Type-Options is not 'nosniff'")
    return found


@schemathesis.check
def tmf_error(ctx: Any, response: Any, case: Any) -> None:
    problems = [p for p in _problems(response) if "TMF Error" in p]
    assert not problems, "; ".join(problems)


@schemathesis.check
def api_hygiene_headers(ctx: Any, response: Any, case: Any) -> None:
    problems = [p for p in _problems(response) if "Cache-Control" in p or "X-Content-Type" in p]
    assert not problems, "; ".join(problems)


@schemathesis.check
def every_role(ctx: Any, response: Any, case: Any) -> None:
    tokens: dict[str, str] = json.loads(os.environ.get("TURNUP_FUZZ_ROLE_TOKENS", "{}"))
    log = os.environ.get("TURNUP_FUZZ_LOG")
    problems: list[str] = []
    seen: list[str] = []
    for role, token in sorted(tokens.items()):
        answer = case.call(headers={"Authorization": f"Bearer {token}"})
        seen.append(f"{role} {answer.status_code}")
        problems.extend(f"as {role}: {p}" for p in _problems(answer))
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write("".join(f"{line}\n" for line in seen))
    assert not problems, "; ".join(problems)
