"""The customer bill as a PDF document (fpdf2, core fonts: Latin-1 text only)."""

from __future__ import annotations

from decimal import Decimal

from fpdf import FPDF
from sqlalchemy.orm import Session

from turnup import accounts
from turnup.billing.billrun import bill_lines, get_bill
from turnup.billing.orm import BillingAccount


def _text(value: str) -> str:
    return value.encode("latin-1", "replace").decode("latin-1")


def _money(value: Decimal) -> str:
    return f"{Decimal(value):,.2f}"


def bill_pdf(session: Session, bill_id: str) -> bytes:
    """The bill's PDF: header (bill number, account, customer, period, dates), one row per line, totals."""
    bill = get_bill(session, bill_id)
    account = session.get(BillingAccount, bill.billing_account_id)
    customer = accounts.find_customer(session, bill.customer_id)
    pdf = FPDF(format="A4")
    pdf.set_creator("Turnup")
    pdf.set_title(_text(f"Bill {bill.bill_no}"))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _text(f"Bill {bill.bill_no}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for label, value in (
        ("Customer", customer.name if customer else bill.customer_id),
        ("Billing account", f"{account.name} ({account.id})" if account else bill.billing_account_id),
        ("Billing period", f"{bill.period_start.isoformat()} to {bill.period_end.isoformat()} (exclusive)"),
        ("Bill date", bill.bill_date.isoformat()),
        ("Payment due", bill.payment_due_date.isoformat()),
        ("Currency", bill.currency),
    ):
        pdf.cell(40, 6, _text(label))
        pdf.cell(0, 6, _text(str(value)), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    widths = (80, 40, 25, 20, 25)
    pdf.set_font("Helvetica", "B", 9)
    for width, head in zip(widths, ("Description", "Period", "Amount", "Tax %", "Tax"), strict=True):
        pdf.cell(width, 7, head, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", "", 8)
    for line in bill_lines(session, bill.id):
        period = (
            f"{line.period_start.isoformat()}..{line.period_end.isoformat()}"
            if line.period_start and line.period_end
            else ""
        )
        cells = (
            line.description[:60],
            period,
            _money(line.amount),
            f"{Decimal(line.tax_rate) * 100:.2f}",
            _money(line.tax_amount),
        )
        for width, value in zip(widths, cells, strict=True):
            pdf.cell(width, 6, _text(value), border=1)
        pdf.ln()
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 10)
    totals: tuple[tuple[str, Decimal], ...] = (
        ("Total excluding tax", bill.amount_excluding_tax),
        ("Tax", bill.tax_amount),
        ("Amount due", bill.amount_due),
    )
    for label, amount in totals:
        pdf.cell(145, 7, label, align="R")
        pdf.cell(45, 7, _text(f"{bill.currency} {_money(amount)}"), align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
