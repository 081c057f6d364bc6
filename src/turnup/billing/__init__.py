"""Billing: billing accounts (TMF666), charges (TMF678 appliedCustomerBillingRate) triggered by the delivery
events, bill runs making customer bills (TMF678) with taxes and a PDF, and the charge export.

Other features use only what is exported here:

- ``services_with_running_charges(session, at)``: the ids of services with a recurring rate running at
  ``at`` (reconciliation compares them with what is provisioned); ``billing_account_of_service``.
- ``register_usage_source(fn)`` / ``UsageLine``: the slot usage rating fills; a bill run asks each source for
  an account's rated usage of the previous period (in arrears) and bills each line once.
- ``run_bills``, ``close_bill_run``, ``export_charges``, ``set_tax_rate``: the commands the adapters call.

The consumers (``turnup.billing.consumers``) register when ``turnup.wiring`` imports them.
"""

from turnup.billing.billrun import (
    BillRunResult,
    UsageLine,
    UsageSource,
    close_bill_run,
    register_usage_source,
    run_bills,
    unregister_usage_source,
)
from turnup.billing.schemas import BillRunCreate, TaxRateSet
from turnup.billing.services import (
    billing_account_of_service,
    export_charges,
    services_with_running_charges,
    set_tax_rate,
)

__all__ = [
    "BillRunCreate",
    "BillRunResult",
    "TaxRateSet",
    "UsageLine",
    "UsageSource",
    "billing_account_of_service",
    "close_bill_run",
    "export_charges",
    "register_usage_source",
    "run_bills",
    "services_with_running_charges",
    "set_tax_rate",
    "unregister_usage_source",
]
