"""Accounts over HTTP: TMF629 customer and contact, TMF674 geographic site."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from turnup.accounts import services
from turnup.accounts.orm import Contact, Customer, Site
from turnup.accounts.render import render_contact, render_customer, render_site
from turnup.accounts.schemas import (
    ContactCreate,
    ContactUpdate,
    CustomerCreate,
    CustomerUpdate,
    SiteCreate,
    SiteUpdate,
)
from turnup.api.crud import CrudSpec, add_crud_routes
from turnup.api.hub import hub_router

router = APIRouter(tags=["accounts"])

add_crud_routes(
    router,
    CrudSpec(
        path="/tmf-api/customerManagement/v4/customer",
        label="customer",
        area="accounts",
        model=Customer,
        select=lambda: select(Customer),
        filterable={
            "id": Customer.id,
            "name": Customer.name,
            "customerType": Customer.customer_type,
            "status": Customer.status,
            "segment": Customer.segment,
            "country": Customer.country,
            "createdAt": Customer.created_at,
            "lastUpdate": Customer.updated_at,
            "billingAccount.id": Customer.billing_account_id,
        },
        render=render_customer,
        default_order=(Customer.created_at, Customer.id),
        create_schema=CustomerCreate,
        create=services.create_customer,
        update_schema=CustomerUpdate,
        update=services.update_customer,
        delete=services.delete_customer,
        delete_action="delete",  # deleting a customer is not for everyone who edits customers
        owner_column=Customer.id,
        owner=lambda c: c.id,
    ),
)

add_crud_routes(
    router,
    CrudSpec(
        path="/tmf-api/customerManagement/v4/contact",
        label="contact",
        area="accounts",
        model=Contact,
        select=lambda: select(Contact),
        filterable={
            "id": Contact.id,
            "customerId": Contact.customer_id,
            "name": Contact.name,
            "role": Contact.role,
            "email": Contact.email,
        },
        render=render_contact,
        default_order=(Contact.created_at, Contact.id),
        create_schema=ContactCreate,
        create=services.create_contact,
        update_schema=ContactUpdate,
        update=services.update_contact,
        delete=services.delete_contact,
        owner_column=Contact.customer_id,
        owner=lambda c: c.customer_id,
    ),
)

add_crud_routes(
    router,
    CrudSpec(
        path="/tmf-api/geographicSiteManagement/v4/geographicSite",
        label="geographicSite",
        area="accounts",
        model=Site,
        select=lambda: select(Site),
        filterable={
            "id": Site.id,
            "customerId": Site.customer_id,
            "name": Site.name,
            "city": Site.city,
            "country": Site.country,
            "postcode": Site.postcode,
        },
        render=render_site,
        default_order=(Site.created_at, Site.id),
        create_schema=SiteCreate,
        create=services.create_site,
        update_schema=SiteUpdate,
        update=services.update_site,
        delete=services.delete_site,
        owner_column=Site.customer_id,
        owner=lambda s: s.customer_id,
    ),
)

router.include_router(hub_router("customerManagement", "accounts"))
router.include_router(hub_router("geographicSiteManagement", "accounts"))
