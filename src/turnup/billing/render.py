"""TMF JSON documents for billing: TMF666 billingAccount, TMF678 appliedCustomerBillingRate and
customerBill (with its lines)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from turnup.billing.orm import BillingAccount, BillLine, BillRun, Charge, CustomerBill
from turnup.kernel.hrefs import href, iso

ACCOUNT_API = "accountManagement"
BILL_API = "customerBillManagement"


def money(value: Decimal, unit: str) -> dict[str, Any]:
    return {"unit": unit, "value": f"{Decimal(value):.2f}"}


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def render_account(a: BillingAccount) -> dict[str, Any]:
    return {
        "id": a.id,
        "href": href(ACCOUNT_API, "billingAccount", a.id),
        "@type": "BillingAccount",
        "name": a.name,
        "state": a.state,
        "accountType": "billing",
        "currency": a.currency,
        "billCycleDay": a.bill_cycle_day,
        "paymentTermsDays": a.payment_terms_days,
        "billToContact": {"id": a.bill_to_contact_id, "@referredType": "Contact"}
        if a.bill_to_contact_id
        else None,
        "relatedParty": [{"id": a.customer_id, "role": "customer", "@referredType": "Customer"}],
        "createdAt": iso(a.created_at),
        "lastUpdate": iso(a.updated_at),
    }


def render_charge(c: Charge) -> dict[str, Any]:
    return {
        "id": c.id,
        "href": href(BILL_API, "appliedCustomerBillingRate", c.id),
        "@type": "AppliedCustomerBillingRate",
        "type": c.charge_type,
        "name": c.component,
        "date": iso(c.created_at),
        "isBilled": c.bill_id is not None,
        "billingAccount": {"id": c.billing_account_id, "@referredType": "BillingAccount"},
        "bill": {"id": c.bill_id, "@referredType": "CustomerBill"} if c.bill_id else None,
        "service": {"id": c.service_id, "@referredType": "Service"} if c.service_id else None,
        "product": {"id": c.order_item_id, "@referredType": "Product"} if c.order_item_id else None,
        "productOrder": {"id": c.order_id, "@referredType": "ProductOrder"} if c.order_id else None,
        "productOffering": {"id": c.offering_id} if c.offering_id else None,
        "customerId": c.customer_id,
        "periodCoverage": {"startDateTime": _day(c.period_start), "endDateTime": _day(c.period_end)},
        "taxExcludedAmount": money(c.amount, c.currency),
        "taxCategory": c.tax_category,
        "source": c.source,
        "rateId": c.rate_id,
    }


def render_line(line: BillLine, currency: str) -> dict[str, Any]:
    return {
        "id": line.id,
        "appliedCustomerBillingRate": {"id": line.charge_id},
        "type": line.charge_type,
        "description": line.description,
        "service": {"id": line.service_id} if line.service_id else None,
        "periodCoverage": {"startDateTime": _day(line.period_start), "endDateTime": _day(line.period_end)},
        "taxExcludedAmount": money(line.amount, currency),
        "taxCategory": line.tax_category,
        "taxRate": f"{Decimal(line.tax_rate):.4f}",
        "taxAmount": money(line.tax_amount, currency),
        "taxIncludedAmount": money(Decimal(line.amount) + Decimal(line.tax_amount), currency),
    }


def render_bill(b: CustomerBill, lines: list[BillLine] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": b.id,
        "href": href(BILL_API, "customerBill", b.id),
        "@type": "CustomerBill",
        "billNo": b.bill_no,
        "state": b.state,
        "category": "normal",
        "billingAccount": {"id": b.billing_account_id, "@referredType": "BillingAccount"},
        "relatedParty": [{"id": b.customer_id, "role": "customer"}],
        "billingPeriod": {"startDateTime": _day(b.period_start), "endDateTime": _day(b.period_end)},
        "billDate": _day(b.bill_date),
        "paymentDueDate": _day(b.payment_due_date),
        "amountDue": money(b.amount_due, b.currency),
        "taxExcludedAmount": money(b.amount_excluding_tax, b.currency),
        "taxIncludedAmount": money(b.amount_due, b.currency),
        "taxItem": [{"taxAmount": money(b.tax_amount, b.currency)}],
        "billDocument": [
            {
                "id": f"{b.id}-pdf",
                "mimeType": "application/pdf",
                "url": href(BILL_API, "customerBill", b.id) + "/pdf",
                "@type": "Attachment",
            }
        ],
        "billRun": {"id": b.bill_run_id},
    }
    if lines is not None:
        document["billLine"] = [render_line(line, b.currency) for line in lines]
    return document


def render_bill_run(r: BillRun) -> dict[str, Any]:
    return {
        "id": r.id,
        "href": href(BILL_API, "billRun", r.id),
        "@type": "BillRun",
        "billCycleDay": r.cycle_day,
        "period": r.period_start.strftime("%Y-%m"),
        "billingPeriod": {"startDateTime": _day(r.period_start), "endDateTime": _day(r.period_end)},
        "state": r.state,
        "runs": r.runs,
        "lastRunAt": iso(r.last_run_at),
        "lastRunBy": r.last_run_by,
        "closedAt": iso(r.closed_at),
        "closedBy": r.closed_by,
    }
