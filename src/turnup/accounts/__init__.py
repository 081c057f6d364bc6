"""Customer accounts: customers (organisation or individual), contacts, sites, billing account reference.

Other features use this face only: commands (``create_customer``, ``create_site``, ``create_contact`` …),
their input shapes, and read models (``CustomerInfo``, ``SiteInfo``, ``ContactInfo``) from the queries.
"""

from turnup.accounts.queries import (
    ContactInfo,
    CustomerInfo,
    SiteInfo,
    customer_contacts,
    find_customer,
    find_site,
    live_customer,
)
from turnup.accounts.schemas import (
    ContactCreate,
    Country,
    CustomerCreate,
    CustomerType,
    Email,
    SiteCreate,
    SiteFields,
    Strict,
)
from turnup.accounts.services import create_contact, create_customer, create_site

__all__ = [
    "ContactCreate",
    "ContactInfo",
    "Country",
    "CustomerCreate",
    "CustomerInfo",
    "CustomerType",
    "Email",
    "SiteCreate",
    "SiteFields",
    "SiteInfo",
    "Strict",
    "create_contact",
    "create_customer",
    "create_site",
    "customer_contacts",
    "find_customer",
    "find_site",
    "live_customer",
]
