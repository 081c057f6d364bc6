"""Revenue recognition over HTTP: ``/tmf-api/turnupRevenue/v1`` contracts with their performance obligations
and schedules, the month-end close, the deferred-revenue waterfall, revenue by type and product, and the
general-ledger export (CSV or Parquet)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.api.deps import get_session, requires
from turnup.api.tmf import list_resources, render_one
from turnup.kernel.errors import InvalidInput
from turnup.revenue import close_period, reports
from turnup.revenue.orm import RevenueContract
from turnup.revenue.schemas import PeriodClose
from turnup.security import Principal

router = APIRouter(prefix=reports.BASE_PATH, tags=["revenue"])

CONTRACT_FILTERS = {
    "id": RevenueContract.id,
    "productOrderId": RevenueContract.order_id,
    "customerId": RevenueContract.customer_id,
    "status": RevenueContract.status,
    "createdAt": RevenueContract.created_at,
}


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise InvalidInput(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from error


@router.get("/contract")
def list_contracts(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires("revenue:read"),
) -> list[dict[str, Any]]:
    return list_resources(
        request,
        response,
        session,
        select(RevenueContract),
        CONTRACT_FILTERS,
        lambda c: reports.render_contract(session, c),
        (RevenueContract.created_at, RevenueContract.id),
    )


@router.get("/contract/{contract_id}")
def get_contract(
    contract_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = requires("revenue:read"),
) -> dict[str, Any]:
    contract = reports.get_contract(session, contract_id)
    return render_one(request, reports.render_contract(session, contract, detail=True))


@router.post("/close")
def close(
    body: PeriodClose,
    session: Session = Depends(get_session),
    principal: Principal = requires("revenue:write"),
) -> dict[str, Any]:
    posted = close_period(session, body.through, principal.actor)
    return {"through": body.through.isoformat(), "postedPeriods": posted}


@router.get("/waterfall")
def waterfall(
    start: str | None = Query(None, alias="from", description="first month, YYYY-MM"),
    end: str | None = Query(None, alias="to", description="last month, YYYY-MM"),
    session: Session = Depends(get_session),
    principal: Principal = requires("revenue:read"),
) -> list[dict[str, Any]]:
    return reports.waterfall(session, start=start, end=end)


@router.get("/report")
def revenue_report(
    start: str | None = Query(None, alias="from", description="first entry date, YYYY-MM-DD"),
    end: str | None = Query(None, alias="to", description="last entry date, YYYY-MM-DD"),
    session: Session = Depends(get_session),
    principal: Principal = requires("revenue:read"),
) -> list[dict[str, Any]]:
    return reports.revenue_by(session, start=_day(start, "from"), end=_day(end, "to"))


@router.get("/export")
def export(
    format: str = Query("csv", pattern="^(csv|parquet)$"),
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
    session: Session = Depends(get_session),
    principal: Principal = requires("revenue:read"),
) -> Response:
    rows = reports.gl_rows(session, start=_day(start, "from"), end=_day(end, "to"))
    if format == "parquet":
        return Response(
            reports.gl_parquet(rows),
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": 'attachment; filename="revenue-gl.parquet"'},
        )
    return Response(
        reports.gl_csv(rows),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="revenue-gl.csv"'},
    )
