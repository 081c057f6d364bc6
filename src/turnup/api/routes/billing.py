"""Billing over HTTP: TMF666 billingAccount, TMF678 appliedCustomerBillingRate and customerBill (with its
PDF), bill runs, the tax rate table, the charge export, and the hubs of both APIs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from turnup.api.crud import CrudSpec, add_crud_routes
from turnup.api.deps import get_session, requires
from turnup.api.hub import hub_router
from turnup.api.tmf import list_resources, render_one
from turnup.billing import billrun, pdf, services
from turnup.billing.orm import BillingAccount, BillRun, Charge, CustomerBill, TaxRate
from turnup.billing.render import render_account, render_bill, render_bill_run, render_charge
from turnup.billing.schemas import (
    BillingAccountCreate,
    BillingAccountUpdate,
    BillRunCreate,
    ChargeCreate,
    TaxRateSet,
)
from turnup.kernel.hrefs import iso
from turnup.security import Principal

ACCOUNTS = "/tmf-api/accountManagement/v4/billingAccount"
BILLS = "/tmf-api/customerBillManagement/v4"

router = APIRouter(tags=["billing"])

add_crud_routes(
    router,
    CrudSpec(
        path=ACCOUNTS,
        label="billingAccount",
        area="billing",
        model=BillingAccount,
        select=lambda: select(BillingAccount),
        filterable={
            "id": BillingAccount.id,
            "name": BillingAccount.name,
            "state": BillingAccount.state,
            "currency": BillingAccount.currency,
            "billCycleDay": BillingAccount.bill_cycle_day,
            "relatedParty.id": BillingAccount.customer_id,
        },
        render=render_account,
        default_order=(BillingAccount.created_at, BillingAccount.id),
        create_schema=BillingAccountCreate,
        create=services.create_account,
        update_schema=BillingAccountUpdate,
        update=services.update_account,
    ),
)

add_crud_routes(
    router,
    CrudSpec(
        path=f"{BILLS}/appliedCustomerBillingRate",
        label="appliedCustomerBillingRate",
        area="billing",
        model=Charge,
        select=lambda: select(Charge),
        filterable={
            "id": Charge.id,
            "type": Charge.charge_type,
            "service.id": Charge.service_id,
            "service": Charge.service_id,
            "billingAccount.id": Charge.billing_account_id,
            "billingAccount": Charge.billing_account_id,
            "bill.id": Charge.bill_id,
            "product.id": Charge.order_item_id,
            "productOrder.id": Charge.order_id,
            "customerId": Charge.customer_id,
            "date": Charge.created_at,
        },
        render=render_charge,
        default_order=(Charge.created_at, Charge.id),
        create_schema=ChargeCreate,
        create=services.create_charge,
    ),
)


@router.get(f"{BILLS}/appliedCustomerBillingRateExport", name="export appliedCustomerBillingRate")
def export_charges(
    format: str = Query("csv", description="csv | json"),
    since: str | None = Query(None, description="charges created at or after this ISO 8601 date-time"),
    session: Session = Depends(get_session),
    principal: Principal = requires("billing:read"),
) -> Response:
    body = services.export_charges(session, format, services.parse_since(since))
    media = "text/csv" if format == "csv" else "application/json"
    return Response(
        content=body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="charges.{format}"'},
    )


@router.get(f"{BILLS}/customerBill", name="list customerBill")
def list_bills(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires("billing:read"),
) -> list[dict[str, Any]]:
    return list_resources(
        request,
        response,
        session,
        select(CustomerBill),
        {
            "id": CustomerBill.id,
            "billNo": CustomerBill.bill_no,
            "state": CustomerBill.state,
            "billingAccount.id": CustomerBill.billing_account_id,
            "relatedParty.id": CustomerBill.customer_id,
            "billRun.id": CustomerBill.bill_run_id,
            "billDate": CustomerBill.bill_date,
        },
        render_bill,
        (CustomerBill.created_at, CustomerBill.id),
    )


@router.get(f"{BILLS}/customerBill/{{bill_id}}", name="get customerBill")
def get_bill(
    bill_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = requires("billing:read"),
) -> dict[str, Any]:
    bill = billrun.get_bill(session, bill_id)
    return render_one(request, render_bill(bill, billrun.bill_lines(session, bill.id)))


@router.get(f"{BILLS}/customerBill/{{bill_id}}/pdf", name="customerBill pdf")
def bill_pdf(
    bill_id: str, session: Session = Depends(get_session), principal: Principal = requires("billing:read")
) -> Response:
    content = pdf.bill_pdf(session, bill_id)
    return Response(
        content=content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="bill-{bill_id}.pdf"'},
    )


@router.post(f"{BILLS}/billRun", status_code=201, name="run bills")
def run_bills(
    body: BillRunCreate = Body(...),
    session: Session = Depends(get_session),
    principal: Principal = requires("billing:run"),
) -> dict[str, Any]:
    result = billrun.run_bills(session, body, principal.actor)
    return render_bill_run(result.run) | {
        "customerBill": [{"id": bill_id} for bill_id in result.bills],
        "accountsSkipped": result.skipped,
        "accountsFailed": [{"billingAccount": {"id": a}, "message": m} for a, m in result.failed],
    }


@router.get(f"{BILLS}/billRun", name="list billRun")
def list_bill_runs(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires("billing:read"),
) -> list[dict[str, Any]]:
    return list_resources(
        request,
        response,
        session,
        select(BillRun),
        {"id": BillRun.id, "state": BillRun.state, "billCycleDay": BillRun.cycle_day},
        render_bill_run,
        (BillRun.period_start, BillRun.cycle_day),
    )


@router.get(f"{BILLS}/billRun/{{run_id}}", name="get billRun")
def get_bill_run(
    run_id: str,
    request: Request,
    session: Session = Depends(get_session),
    principal: Principal = requires("billing:read"),
) -> dict[str, Any]:
    return render_one(request, render_bill_run(billrun.get_bill_run(session, run_id)))


@router.post(f"{BILLS}/billRun/{{run_id}}/close", name="close billRun")
def close_bill_run(
    run_id: str, session: Session = Depends(get_session), principal: Principal = requires("billing:run")
) -> dict[str, Any]:
    return render_bill_run(billrun.close_bill_run(session, run_id, principal.actor))


def _render_tax(row: TaxRate) -> dict[str, Any]:
    return {
        "id": f"{row.country}-{row.tax_category}",
        "@type": "TaxRate",
        "country": row.country,
        "taxCategory": row.tax_category,
        "rate": f"{row.rate:.4f}",
        "lastUpdate": iso(row.updated_at),
    }


@router.get(f"{BILLS}/taxRate", name="list taxRate")
def list_tax_rates(
    request: Request,
    response: Response,
    session: Session = Depends(get_session),
    principal: Principal = requires("billing:read"),
) -> list[dict[str, Any]]:
    return list_resources(
        request,
        response,
        session,
        select(TaxRate),
        {"country": TaxRate.country, "taxCategory": TaxRate.tax_category},
        _render_tax,
        (TaxRate.country, TaxRate.tax_category),
    )


@router.post(f"{BILLS}/taxRate", status_code=201, name="set taxRate")
def set_tax_rate(
    body: TaxRateSet = Body(...),
    session: Session = Depends(get_session),
    principal: Principal = requires("billing:write"),
) -> dict[str, Any]:
    return _render_tax(services.set_tax_rate(session, body, principal.actor))


router.include_router(hub_router("customerBillManagement", "billing"))
router.include_router(hub_router("accountManagement", "billing"))
