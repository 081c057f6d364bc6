"""`turnup demo` (what `./run demo` runs): migrates, loads the demo operator, prints a working API
token and serves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from turnup.accounts.orm import Customer
from turnup.catalog.orm import ProductOffering
from turnup.kernel.db import make_engine, make_sessionmaker

OFFERINGS = "/tmf-api/productCatalogManagement/v4/productOffering"
ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_until(proc: subprocess.Popen[str], marker: str, deadline: float) -> list[str]:
    lines: list[str] = []
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"{marker!r} never printed; output was:\n" + "\n".join(lines))


def test_demo_serves_the_demo_operator_and_prints_a_working_token(db_url: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "TURNUP_DATABASE_URL": db_url,
        "TURNUP_PORT": str(port),
        "TURNUP_HOST": "127.0.0.1",
        "COLUMNS": "200",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "turnup.cli.main", "demo"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = _read_until(proc, "API token:", time.monotonic() + 120)
        token = lines[-1].split("API token:", 1)[1].strip()
        _read_until(proc, f"http://127.0.0.1:{port}", time.monotonic() + 30)
        base = f"http://127.0.0.1:{port}"
        response = None
        for _ in range(100):
            try:
                response = httpx.get(
                    f"{base}{OFFERINGS}",
                    params={"fields": "name", "limit": 2},
                    headers={"Authorization": f"Bearer {token}"},
                )
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert response is not None and response.status_code == 200, response
        items = response.json()
        assert len(items) == 2
        assert all(set(i) == {"id", "href", "@type", "name"} for i in items)
        assert int(response.headers["X-Total-Count"]) >= 5
        assert response.headers["X-Result-Count"] == "2"
        anonymous = httpx.get(f"{base}{OFFERINGS}")
        assert anonymous.status_code == 401 and anonymous.json()["@type"] == "Error"
        _order_fibre_and_see_it_complete(base, token)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # a second run keeps the data and issues a new token (the demo is re-runnable)
    rerun = subprocess.run(
        [sys.executable, "-m", "turnup.cli.main", "demo", "--no-serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "API token: tu_" in rerun.stdout
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as s:
            assert s.scalar(select(func.count()).select_from(Customer)) == 3
            names = s.scalars(select(ProductOffering.name)).all()
            assert len(names) == len(set(names))
            # the tax rate table bill runs apply (loaded once; re-running keeps it)
            from turnup.billing.orm import TaxRate

            rates = {(r.country, r.tax_category): str(r.rate) for r in s.scalars(select(TaxRate))}
            expected = {("GB", "standard"): 0.2, ("DE", "standard"): 0.19}
            assert {k: float(v) for k, v in rates.items()} == expected
    finally:
        engine.dispose()


def _order_fibre_and_see_it_complete(base: str, token: str) -> None:
    """The demo runs order workflows in-process: an order placed through the API becomes active."""
    auth = {"Authorization": f"Bearer {token}"}
    fibre = httpx.get(f"{base}{OFFERINGS}", params={"name": "Business Fibre 1G"}, headers=auth).json()
    customer = httpx.get(
        f"{base}/tmf-api/customerManagement/v4/customer",
        params={"name": "Brightwater Dental Group"},
        headers=auth,
    ).json()
    assert len(fibre) == 1 and len(customer) == 1
    created = httpx.post(
        f"{base}{ORDERS}",
        headers=auth,
        json={
            "relatedParty": [{"id": customer[0]["id"], "role": "customer"}],
            "productOrderItem": [{"id": "1", "action": "add", "productOffering": {"id": fibre[0]["id"]}}],
        },
    )
    assert created.status_code == 201, created.text
    # the catalog's fibre needs a field visit (installation) before activation: the technician reports it
    visit = httpx.post(
        f"{base}{ORDERS}/{created.json()['id']}/event",
        headers=auth,
        json={"eventType": "technicianCompleted", "reference": "demo-job"},
    )
    assert visit.status_code == 201, visit.text
    state = created.json()["state"]
    deadline = time.monotonic() + 60
    while state not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        state = httpx.get(f"{base}{ORDERS}/{created.json()['id']}", headers=auth).json()["state"]
    assert state == "completed"


@pytest.mark.parametrize("command", [["--help"], ["catalog", "--help"], ["accounts", "--help"]])
def test_cli_help_works(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "turnup.cli.main", *command], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "Usage" in result.stdout
