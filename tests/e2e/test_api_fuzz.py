"""Property-based fuzzing of every API operation from the OpenAPI schema (schemathesis, against a real
server): whatever the input, no operation answers 500."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.live_server import LiveServer

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_no_operation_answers_500(app: Any, admin_token: str, tmp_path: Path) -> None:
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
                "not_a_server_error",
                "--max-examples",
                "8",
                "--seed",
                "20261125",
                "--phases",
                "examples,fuzzing",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
    finally:
        server.stop()
    failures = result.stdout.find("FAILURES")
    summary = result.stdout[failures:] if failures >= 0 else result.stdout[-4000:]
    assert "Tested:" in result.stdout, summary  # it really ran operations
    assert result.returncode == 0, summary
