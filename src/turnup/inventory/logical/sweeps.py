"""Housekeeping sweep owned by logical inventory (registered with ``turnup.kernel.housekeeping`` on import).

Logical resource reservations (IP prefixes/addresses, VLANs, ASNs, identifiers) have no expiry sweep: they
are released lazily. An expired reserved block goes back to its space's free list the next time that space
is allocated from or reported on (``chain.reclaim``, bounded per space and run inside the caller's
transaction), and a reservation past its expiry already renders as ``expired``. The telephone numbers such
a reservation holds are returned by the "numbers" sweep below.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from turnup.inventory.logical import numbers
from turnup.kernel.housekeeping import register


@register("numbers")
def sweep_numbers(session: Session) -> dict[str, int]:
    """Telephone numbers whose aging (quarantine) or reservation has ended become available."""
    return numbers.sweep(session, commit=True)
