"""Revenue recognition (ASC 606 / IFRS 15): contracts from orders, performance obligations, allocation by
standalone selling price, earned-trigger processing, a double-entry ledger and its reports.

Other features use only what is exported here. The consumers (``turnup.revenue.consumers``) register
themselves when the composition root imports them. The slots other features fill:

- ``record_usage(session, service_id=, amount=, used_on=, ref=)``: rated usage, recognised as used;
- ``record_billing(session, service_id=, amount=, billed_on=, ref=)``: billed charges (receivable, settling
  the contract asset, else deferred revenue).
"""

from turnup.revenue.contracts import contract_of_order, ensure_contract
from turnup.revenue.services import close_period, record_billing, record_usage

__all__ = ["close_period", "contract_of_order", "ensure_contract", "record_billing", "record_usage"]
