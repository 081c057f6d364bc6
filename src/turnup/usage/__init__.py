"""Usage (TMF635 v4): usage records, their rating with the catalog's (or the agreed quote's) tiered usage
prices, the review queue for usage that cannot be billed, and the hook bill runs use.

Bill runs (billing) use only this face:

- ``unbilled_rated_usage(session, period_start, period_end, *, service_ids=None, billing_account_id=None)
  -> list[RatedUsage]``: rated usage not billed yet, ``period_start <= usageDate < period_end``, of these
  services and/or this billing account (the billing account of a record is its customer's billing account
  as accounts knew it when usage first saw the service); never usage under review or written off;
- ``mark_billed(session, usage_ids, bill_ref) -> int``: marks them billed in the caller's transaction;
  idempotent for the same ``bill_ref``, ``Conflict`` for a record billed elsewhere or not billable, so a
  usage line is billed once only.

Records arrive through the API (``/tmf-api/usageManagement/v4/usage``, ``…/usageImport``) or the CLI
(``turnup usage import FILE``): ``create_usage``, ``import_usage`` and ``parse_one``.
"""

from turnup.usage.services import (
    ImportReport,
    RatedUsage,
    Rejected,
    create_usage,
    import_usage,
    mark_billed,
    parse_one,
    unbilled_rated_usage,
)

__all__ = [
    "ImportReport",
    "RatedUsage",
    "Rejected",
    "create_usage",
    "import_usage",
    "mark_billed",
    "parse_one",
    "unbilled_rated_usage",
]
