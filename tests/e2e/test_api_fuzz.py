"""Property-based fuzzing of every API operation from the OpenAPI schema (schemathesis, against a real
server), with every role of the permission matrix: whatever the input and whoever asks, no operation answers
5xx, every error is a TMF ``Error`` and every answer is ``no-store``/``nosniff``.

One schemathesis run per database (schema loading and strategy building dominate the cost): each generated
request is sent as an admin and then again with the token of every role in ``ROLE_PERMISSIONS``
(``tests/support/fuzz_checks.py``, check ``every_role``). Examples per operation are bounded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tests.support.live_server import LiveServer
from turnup.security import create_api_token, create_user
from turnup.security.permissions import ROLE_PERMISSIONS

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
REPO = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = 4
CHECKS = "not_a_server_error,tmf_error,api_hygiene_headers,every_role"


def _tokens(factory: sessionmaker[Session]) -> dict[str, str]:
    """A user and a bearer token for every role of the matrix (whatever roles it holds)."""
    tokens = {}
    with factory() as s:
        for role in sorted(ROLE_PERMISSIONS):
            create_user(s, username=f"fuzz-{role}", password="fuzz-password-long", roles=[role])
            tokens[role] = create_api_token(s, username=f"fuzz-{role}")
    return tokens


def test_no_operation_answers_5xx_or_a_non_tmf_error_for_any_role(
    app: Any, admin_token: str, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    tokens = _tokens(session_factory)
    log = tmp_path / "roles.log"
    env = os.environ | {
        "SCHEMATHESIS_HOOKS": "tests.support.fuzz_checks",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
        "TURNUP_FUZZ_ROLE_TOKENS": json.dumps(tokens),
        "TURNUP_FUZZ_LOG": str(log),
    }
    server = LiveServer(app)
    server.start()
    try:
        result = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{server.url}/openapi.json",
                "-H",
                f"Authorization: Bearer {admin_token}",
                "--checks",
                CHECKS,
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                "20261125",
                "--phases",
                "examples,fuzzing",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,
            env=env,
        )
    finally:
        server.stop()
    failures = result.stdout.find("FAILURES")
    summary = result.stdout[failures:] if failures >= 0 else result.stdout[-4000:]
    assert "Tested:" in result.stdout, summary + result.stderr[-2000:]  # it really ran operations
    assert result.returncode == 0, summary
    # Every role really took part, and was really itself: the narrow roles were refused somewhere (403)
    answers = Counter(tuple(line.split()) for line in log.read_text().splitlines())
    roles_seen = {role for role, _ in answers}
    assert roles_seen == set(ROLE_PERMISSIONS)
    for role in ROLE_PERMISSIONS:
        if "*" not in ROLE_PERMISSIONS[role]:  # admin and it hold everything
            assert answers[(role, "403")] > 0, (role, answers)
