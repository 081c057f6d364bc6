"""Pure helpers (no database): block keys, buddy arithmetic, IP parsing, keypad words, number features.

Every logical space (IP family, VLAN domain, ASN space, identifier sequence) is a range of integers
``[lo, hi)``. Keys are stored as fixed-width lowercase hexadecimal (33 digits: enough for 2**128, the end of
IPv6), so string order equals numeric order on both databases and 128-bit values fit where SQLite integers
(64-bit) would not.
"""

from __future__ import annotations

import ipaddress
import string

from turnup.kernel.errors import InvalidInput

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
WIDTH = {"ipv4": 32, "ipv6": 128}


def hexkey(n: int) -> str:
    if n < 0 or n > 1 << 128:
        raise ValueError(f"key out of range: {n}")
    return format(n, "033x")


def unhex(key: str) -> int:
    return int(key, 16)


def decompose(lo: int, hi: int) -> list[tuple[int, int]]:
    """Split ``[lo, hi)`` into the fewest aligned power-of-two blocks ``(start, k)`` (size ``2**k``)."""
    out: list[tuple[int, int]] = []
    while lo < hi:
        k = (lo & -lo).bit_length() - 1 if lo else 130
        while (1 << k) > hi - lo:
            k -= 1
        out.append((lo, k))
        lo += 1 << k
    return out


def split_plan(lo: int, k: int, target: int, r: int) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Buddy split of free block ``(lo, k)`` down to the aligned block ``(target, r)`` inside it.

    Returns the free buddies left over and the target; together they partition the original block.
    """
    if r > k or target < lo or target + (1 << r) > lo + (1 << k) or target % (1 << r):
        raise ValueError("target not an aligned sub-block")
    pieces: list[tuple[int, int]] = []
    cur = lo
    for half_k in range(k - 1, r - 1, -1):
        half = 1 << half_k
        if target >= cur + half:
            pieces.append((cur, half_k))
            cur += half
        else:
            pieces.append((cur + half, half_k))
    return pieces, (cur, r)


# ---------------------------------------------------------------------------------------------- IP


def parse_network(text: str, field: str) -> IPNetwork:
    """A CIDR prefix with no host bits set, or a TMF-style InvalidInput naming ``field``."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        message = str(exc)
        if "host bits set" in message:
            raise InvalidInput(
                f"{field}: {text!r} has host bits set (did you mean "
                f"{ipaddress.ip_network(text.strip(), strict=False)}?)"
            ) from None
        raise InvalidInput(f"{field}: {text!r} is not a valid CIDR prefix") from None


def parse_address_or_network(text: str, field: str) -> IPNetwork:
    """An address (``10.0.0.5``) is a /32 or /128; otherwise a strict CIDR."""
    if "/" not in text:
        try:
            address = ipaddress.ip_address(text.strip())
        except ValueError:
            raise InvalidInput(f"{field}: {text!r} is not a valid IP address or prefix") from None
        return ipaddress.ip_network(address)
    return parse_network(text, field)


def family_of(net: IPNetwork) -> str:
    return "ipv4" if net.version == 4 else "ipv6"


def network_range(net: IPNetwork) -> tuple[int, int]:
    lo = int(net.network_address)
    return lo, lo + net.num_addresses


def format_ip(resource_type: str, lo: int, k: int) -> str:
    width = WIDTH[resource_type]
    if resource_type == "ipv4":
        return str(ipaddress.IPv4Network((lo, width - k)))
    return str(ipaddress.IPv6Network((lo, width - k)))


def format_address(resource_type: str, lo: int) -> str:
    return str(ipaddress.IPv4Address(lo) if resource_type == "ipv4" else ipaddress.IPv6Address(lo))


# ------------------------------------------------------------------------------------- identifiers


def check_template(template: str, field: str = "template") -> None:
    """Identifier templates use Python format syntax with the one field ``n``: ``CKT-{n:06d}``."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError:
        raise InvalidInput(f"{field}: {template!r} is not a valid template") from None
    if not names or any(name != "n" for name in names):
        raise InvalidInput(f"{field}: must contain the placeholder {{n}} (e.g. 'CKT-{{n:06d}}') and no other")
    try:
        template.format(n=1)
    except (ValueError, TypeError, IndexError, KeyError):
        raise InvalidInput(f"{field}: {template!r} cannot format an integer") from None


def format_identifier(template: str | None, n: int) -> str:
    return template.format(n=n) if template else str(n)


# ---------------------------------------------------------------------------------- numbers, keypad

KEYPAD = {
    c: d
    for d, letters in {
        "2": "ABC",
        "3": "DEF",
        "4": "GHI",
        "5": "JKL",
        "6": "MNO",
        "7": "PQRS",
        "8": "TUV",
        "9": "WXYZ",
    }.items()
    for c in letters
}
_SEQUENCES = {
    "0123",
    "1234",
    "2345",
    "3456",
    "4567",
    "5678",
    "6789",
    "9876",
    "8765",
    "7654",
    "6543",
    "5432",
    "4321",
    "3210",
}


def vanity_to_digits(word: str) -> str:
    """Letters map to telephone keypad digits (ITU E.161): ``FLOWERS`` -> ``3569377``; digits stay."""
    out = []
    for ch in word.upper():
        if ch.isdigit():
            out.append(ch)
        elif ch in KEYPAD:
            out.append(KEYPAD[ch])
        elif ch in " -.()":
            continue
        else:
            raise ValueError(ch)
    return "".join(out)


def max_run(digits: str) -> int:
    best = run = 0
    prev = ""
    for ch in digits:
        run = run + 1 if ch == prev else 1
        prev = ch
        best = max(best, run)
    return best


def number_features(digits: str) -> tuple[int, bool]:
    """(longest run of one digit in the last 7 digits, golden?).

    Golden: a run of 4+ in the last 7 digits, or the last 4 digits ascend/descend (1234, 9876), or
    follow ABAB or AABB. The benchmark loader computes the same in SQL and checks a sample against this.
    """
    tail = digits[-7:]
    run = max_run(tail)
    last4 = digits[-4:]
    golden = (
        run >= 4
        or last4 in _SEQUENCES
        or (len(last4) == 4 and last4[0] == last4[2] and last4[1] == last4[3])
        or (len(last4) == 4 and last4[0] == last4[1] and last4[2] == last4[3])
    )
    return run, golden


def next_prefix(digits: str) -> str:
    """The smallest string greater than every string starting with ``digits`` (digits only)."""
    return digits[:-1] + chr(ord(digits[-1]) + 1)
