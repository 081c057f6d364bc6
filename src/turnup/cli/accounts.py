"""``turnup accounts …``: customers, contacts and sites from the command line."""

from __future__ import annotations

from decimal import Decimal

import typer
from rich.table import Table
from sqlalchemy import select

from turnup.accounts import services
from turnup.accounts.orm import Customer, Site
from turnup.accounts.schemas import ContactCreate, CustomerCreate, CustomerUpdate, SiteCreate
from turnup.cli.common import CLI_ACTOR, cli_session, console, validated

app = typer.Typer(help="Customers, contacts and sites.", no_args_is_help=True)


@app.command("create")
def create(
    name: str,
    customer_type: str = typer.Option("organization", "--type", help="organization | individual"),
    country: str | None = typer.Option(None, help="ISO 3166 alpha-2"),
    segment: str | None = typer.Option(None),
    email: str | None = typer.Option(None),
    status: str = typer.Option("prospective", help="prospective | active"),
) -> None:
    """Create a customer."""
    data = validated(
        CustomerCreate,
        name=name,
        customerType=customer_type,
        country=country,
        segment=segment,
        email=email,
        status=status,
    )
    with cli_session() as session:
        customer = services.create_customer(session, data, CLI_ACTOR)
        console.print(f"Created customer [bold]{customer.name}[/] id={customer.id}")


@app.command("list")
def list_customers(status: str | None = typer.Option(None), limit: int = typer.Option(50)) -> None:
    """List customers."""
    with cli_session() as session:
        stmt = select(Customer).order_by(Customer.name).limit(limit)
        if status:
            stmt = stmt.where(Customer.status == status)
        table = Table("id", "name", "type", "status", "segment", "country")
        for c in session.scalars(stmt):
            table.add_row(c.id, c.name, c.customer_type, c.status, c.segment or "", c.country or "")
        console.print(table)


@app.command("set-status")
def set_status(customer_id: str, status: str) -> None:
    """Move a customer through its lifecycle (prospective, active, inactive, suspended, closed)."""
    data = validated(CustomerUpdate, status=status)
    with cli_session() as session:
        customer = services.update_customer(session, customer_id, data, CLI_ACTOR)
        console.print(f"Customer {customer.id} is now [bold]{customer.status}[/]")


@app.command("add-site")
def add_site(
    customer_id: str,
    name: str,
    country: str = typer.Option(..., help="ISO 3166 alpha-2"),
    street: str | None = typer.Option(None),
    city: str | None = typer.Option(None),
    postcode: str | None = typer.Option(None),
    latitude: Decimal | None = typer.Option(None),
    longitude: Decimal | None = typer.Option(None),
) -> None:
    """Add a site (address and coordinates) to a customer."""
    data = validated(
        SiteCreate,
        customerId=customer_id,
        name=name,
        country=country,
        street=street,
        city=city,
        postcode=postcode,
        latitude=latitude,
        longitude=longitude,
    )
    with cli_session() as session:
        site = services.create_site(session, data, CLI_ACTOR)
        console.print(f"Created site [bold]{site.name}[/] id={site.id}")


@app.command("sites")
def sites(customer_id: str) -> None:
    """List a customer's sites."""
    with cli_session() as session:
        services.get_customer(session, customer_id)
        table = Table("id", "name", "city", "country", "lat", "lon")
        for s in session.scalars(select(Site).where(Site.customer_id == customer_id).order_by(Site.name)):
            table.add_row(
                s.id, s.name, s.city or "", s.country, str(s.latitude or ""), str(s.longitude or "")
            )
        console.print(table)


@app.command("add-contact")
def add_contact(
    customer_id: str,
    name: str,
    role: str | None = typer.Option(None),
    email: str | None = typer.Option(None),
    phone: str | None = typer.Option(None),
) -> None:
    """Add a contact person to a customer."""
    data = validated(ContactCreate, customerId=customer_id, name=name, role=role, email=email, phone=phone)
    with cli_session() as session:
        contact = services.create_contact(session, data, CLI_ACTOR)
        console.print(f"Created contact [bold]{contact.name}[/] id={contact.id}")
