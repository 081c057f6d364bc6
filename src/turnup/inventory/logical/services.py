"""Resource pools and allocations: IP aggregates/pools/subnets, VLAN and ASN pools, identifier pools.

Each public function validates everything before writing, audits, publishes and commits once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from turnup.inventory.logical import chain, fastpath
from turnup.inventory.logical.codec import (
    WIDTH,
    IPNetwork,
    check_template,
    decompose,
    family_of,
    hexkey,
    network_range,
    parse_address_or_network,
    parse_network,
    unhex,
)
from turnup.inventory.logical.orm import LogicalBlock, LogicalSpace
from turnup.inventory.logical.render import INVENTORY_API, POOL_API, render_block, render_pool
from turnup.inventory.logical.schemas import AllocationRequest, PoolCreate, PoolUpdate
from turnup.kernel import audit, clock
from turnup.kernel.db import table_of
from turnup.kernel.errors import Conflict, InvalidInput, NotFound
from turnup.kernel.ids import new_id
from turnup.kernel.outbox import publish

ROOT_RANGES = {"ipv4": (0, 1 << 32), "ipv6": (0, 1 << 128), "vlan": (1, 4095), "asn": (1, 4294967295)}
T = table_of(LogicalBlock)
_R = TypeVar("_R")
VLAN_RULE = "VLAN ids are 1-4094 (0 and 4095 are reserved)"
ASN_RULE = "ASNs are 1-4294967294 (16-bit 1-65534, 32-bit up to 4294967294)"


# ------------------------------------------------------------------------------------------ lookups


def get_pool(session: Session, pool_id: str, field: str = "poolId", *, fresh: bool = False) -> LogicalSpace:
    """The pool by its id or, failing that, by its name (names are unique per resource type and routing
    domain: a name two pools share is a 409 listing their ids); ``fresh`` reads the row again even if this
    session already holds it."""
    space = session.get(LogicalSpace, pool_id, populate_existing=fresh)
    if space is None:
        named = session.scalars(
            select(LogicalSpace)
            .where(LogicalSpace.name == pool_id)
            .order_by(LogicalSpace.id)
            .execution_options(populate_existing=fresh)
        ).all()
        if len(named) > 1:
            raise Conflict(
                f"{field}: {len(named)} resource pools are named {pool_id!r} "
                f"({', '.join(f'{s.resource_type} {s.id}' for s in named)}); give the pool's id",
                reason="Ambiguous pool name",
            )
        space = named[0] if named else None
    if space is None:
        raise NotFound(f"{field}: resource pool {pool_id!r} not found")
    return space


def get_block(session: Session, block_id: str) -> LogicalBlock:
    block = session.get(LogicalBlock, block_id)
    if block is None or block.state not in ("reserved", "allocated", "quarantine"):
        raise NotFound(f"logicalResource {block_id!r} not found")
    return block


def ensure_root(session: Session, resource_type: str, domain: str) -> LogicalSpace:
    """The space covering a whole family/id range in one routing (or VLAN) domain, created on first use."""
    stmt = select(LogicalSpace).where(
        LogicalSpace.resource_type == resource_type,
        LogicalSpace.domain == domain,
        LogicalSpace.role == "root",
    )
    root = session.scalar(stmt)
    if root is not None:
        return root
    lo, hi = ROOT_RANGES[resource_type]
    now = clock.now()
    root = LogicalSpace(
        id=new_id(),
        resource_type=resource_type,
        role="root",
        name=f"{resource_type}:{domain}",
        domain=domain,
        parent_id=None,
        lo=hexkey(lo),
        hi=hexkey(hi),
        policy="best-fit" if resource_type in WIDTH else "first-fit",
        quarantine_seconds=0,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(root)
            session.flush()
            chain.init_chain(session, root.id, lo, hi)
    except IntegrityError:  # created concurrently: use theirs
        found = session.scalar(stmt)
        assert found is not None
        return found
    return root


def _walk(
    session: Session, root: LogicalSpace, lo: int, hi: int, roles: tuple[str, ...]
) -> LogicalSpace | None:
    """The deepest space of one of ``roles`` that contains ``[lo, hi)``, descending through containers."""
    space, found = root, None
    for _depth in range(16):
        row = session.execute(
            select(T.c.lo, T.c.hi, T.c.state, T.c.child_space_id)
            .where(T.c.space_id == space.id, T.c.lo <= hexkey(lo))
            .order_by(T.c.lo.desc())
            .limit(1)
        ).first()
        if row is None or row.state != "container" or row.hi is None or unhex(row.hi) < hi:
            break
        child = session.get(LogicalSpace, row.child_space_id)
        if child is None:
            break
        if child.role in roles:
            found = child
        space = child
    return found


# ---------------------------------------------------------------------------------------- pools


def create_pool(session: Session, data: PoolCreate, actor: str) -> LogicalSpace:
    if data.poolType in ("ipAggregate", "ipPool", "ipSubnet"):
        space = _create_ip_space(session, data)
    elif data.poolType in ("vlanPool", "asnPool"):
        space = _create_range_pool(session, data)
    else:
        space = _create_identifier_pool(session, data)
    audit.record(
        session,
        actor=actor,
        action="resourcePool.create",
        resource_type="resourcePool",
        resource_id=space.id,
        details={"poolType": data.poolType, "name": data.name, "prefix": space.prefix},
    )
    publish(
        session,
        api=POOL_API,
        event_type="ResourcePoolCreateEvent",
        resource_type="resourcePool",
        resource=render_pool(space),
    )
    session.commit()
    return space


def _check_name(session: Session, resource_type: str, domain: str, name: str) -> None:
    taken = session.scalar(
        select(LogicalSpace.id).where(
            LogicalSpace.resource_type == resource_type,
            LogicalSpace.domain == domain,
            LogicalSpace.name == name,
        )
    )
    if taken:
        raise Conflict(f"name: a {resource_type} pool named {name!r} already exists in domain {domain!r}")


def _new_space(
    session: Session,
    data: PoolCreate,
    *,
    resource_type: str,
    role: str,
    domain: str,
    parent: LogicalSpace | None,
    lo: int,
    hi: int,
    prefix: str | None,
    policy: str,
) -> LogicalSpace:
    now = clock.now()
    space = LogicalSpace(
        id=new_id(),
        resource_type=resource_type,
        role=role,
        name=data.name,
        domain=domain,
        parent_id=parent.id if parent else None,
        lo=hexkey(lo),
        hi=hexkey(hi),
        prefix=prefix,
        purpose=data.purpose,
        site=data.site,
        description=data.description,
        policy=data.allocationPolicy or policy,
        quarantine_seconds=data.quarantineSeconds,
        template=data.template,
        created_at=now,
        updated_at=now,
    )
    session.add(space)
    session.flush()
    chain.init_chain(session, space.id, lo, hi)
    return space


def _claim(
    session: Session,
    parent: LogicalSpace,
    child_id_holder: list[str],
    lo: int,
    k: int,
    label: str,
    what: str,
    overlap: str,
) -> None:
    try:
        taken = chain.take(session, parent, k, target=lo, state="container", label=label, what=what)
    except Conflict:
        raise Conflict(f"{label}: {overlap}", reason="Overlapping pool") from None
    child_id_holder.append(taken.id)


def _create_ip_space(session: Session, data: PoolCreate) -> LogicalSpace:
    role = {"ipAggregate": "aggregate", "ipPool": "pool", "ipSubnet": "subnet"}[data.poolType]
    domain = data.routingDomain
    if data.start is not None or data.end is not None:
        raise InvalidInput("start: not used for IP pools; give prefix")
    if data.template is not None:
        raise InvalidInput("template: only identifier pools have templates")
    parent_roles = {"aggregate": ("root",), "pool": ("aggregate", "pool"), "subnet": ("pool",)}[role]
    blocks: list[str] = []
    if data.fromResourceId is not None:  # a subnet made of an allocated prefix
        if role != "subnet":
            raise InvalidInput("fromResourceId: only an ipSubnet is made from an allocated prefix")
        row = chain.lock_block(session, data.fromResourceId)
        if row is None or row.state != "allocated":
            raise NotFound(f"fromResourceId: allocated logicalResource {data.fromResourceId!r} not found")
        parent = session.get(LogicalSpace, row.space_id)
        assert parent is not None
        if parent.resource_type not in WIDTH or parent.role not in parent_roles:
            raise InvalidInput("fromResourceId: must be a prefix allocated from an IP pool")
        resource_type = parent.resource_type
        lo, k = unhex(row.lo), row.k
        hi = lo + (1 << k)
        net: IPNetwork = parse_network(f"{_ip(resource_type, lo)}/{WIDTH[resource_type] - k}", "prefix")
        session.execute(update(T).where(T.c.id == row.id).values(state="container"))
        blocks.append(row.id)
        domain = parent.domain
    elif data.prefix is not None:
        net = parse_network(data.prefix, "prefix")
        resource_type = family_of(net)
        lo, hi = network_range(net)
        root = ensure_root(session, resource_type, domain)
        if role == "aggregate":
            parent = root
        elif data.parentId:
            parent = get_pool(session, data.parentId, "parentId")
        else:
            found = _walk(session, root, lo, hi, parent_roles)
            if found is None:
                kinds = " or ".join("ip" + r.capitalize() for r in parent_roles)
                raise InvalidInput(f"prefix: {net} is not inside any {kinds} in routing domain {domain!r}")
            parent = found
        _check_parent(parent, resource_type, parent_roles, net)
        plo, phi = unhex(parent.lo), unhex(parent.hi)
        if lo < plo or hi > phi:
            raise InvalidInput(f"prefix: {net} is not inside {parent.prefix or parent.name}")
        _check_name(session, resource_type, parent.domain, data.name)
        what = "aggregate" if role == "aggregate" else "pool or allocation"
        _claim(
            session,
            parent,
            blocks,
            lo,
            WIDTH[resource_type] - net.prefixlen,
            "prefix",
            str(net),
            f"{net} overlaps an existing {what} in {parent.prefix or 'routing domain ' + repr(domain)}",
        )
        domain = parent.domain
    elif data.parentId and data.prefixLength is not None:
        parent = get_pool(session, data.parentId, "parentId")
        resource_type = parent.resource_type
        if resource_type not in WIDTH:
            raise InvalidInput("parentId: must be an IP aggregate or pool")
        _check_parent(parent, resource_type, parent_roles, None)
        width, parent_len = WIDTH[resource_type], WIDTH[resource_type] - _log2(parent)
        if not parent_len < data.prefixLength <= width:
            raise InvalidInput(
                f"prefixLength: /{data.prefixLength} is outside {parent.prefix} "
                f"(allowed /{parent_len + 1}-/{width})"
            )
        _check_name(session, resource_type, parent.domain, data.name)
        taken = chain.take(
            session,
            parent,
            width - data.prefixLength,
            label="prefixLength",
            what=f"/{data.prefixLength}",
            state="container",
        )
        blocks.append(taken.id)
        lo, hi = taken.lo, taken.lo + (1 << taken.k)
        net = parse_network(f"{_ip(resource_type, lo)}/{data.prefixLength}", "prefix")
        domain = parent.domain
    else:
        raise InvalidInput("prefix: required (or parentId with prefixLength)")
    if data.fromResourceId is not None:
        _check_name(session, resource_type, domain, data.name)
    space = _new_space(
        session,
        data,
        resource_type=resource_type,
        role=role,
        domain=domain,
        parent=parent,
        lo=lo,
        hi=hi,
        prefix=str(net),
        policy="first-fit" if role == "subnet" else "best-fit",
    )
    session.execute(update(T).where(T.c.id.in_(blocks)).values(child_space_id=space.id))
    if role == "subnet" and resource_type == "ipv4" and hi - lo >= 4:  # network and broadcast addresses
        chain.take(session, space, 0, target=lo, state="system", description="network address")
        chain.take(session, space, 0, target=hi - 1, state="system", description="broadcast address")
    return space


def _check_parent(
    parent: LogicalSpace, resource_type: str, roles: tuple[str, ...], net: IPNetwork | None
) -> None:
    if parent.resource_type != resource_type:
        raise InvalidInput(
            f"prefix: {net} is {resource_type} but parent {parent.name!r} is {parent.resource_type}"
        )
    if parent.role not in roles:
        raise InvalidInput(f"parentId: a {parent.role} cannot hold this kind of pool")


def _log2(space: LogicalSpace) -> int:
    return (unhex(space.hi) - unhex(space.lo)).bit_length() - 1


def _ip(resource_type: str, value: int) -> str:
    from turnup.inventory.logical.codec import format_address

    return format_address(resource_type, value)


def _create_range_pool(session: Session, data: PoolCreate) -> LogicalSpace:
    resource_type = "vlan" if data.poolType == "vlanPool" else "asn"
    rule = VLAN_RULE if resource_type == "vlan" else ASN_RULE
    lo_bound, hi_bound = ROOT_RANGES[resource_type]
    for field, value in (("start", data.start), ("end", data.end)):
        if value is None:
            raise InvalidInput(f"{field}: required for a {data.poolType}")
        if not lo_bound <= value < hi_bound:
            raise InvalidInput(f"{field}: {value} is invalid: {rule}")
    assert data.start is not None and data.end is not None
    if data.end < data.start:
        raise InvalidInput(f"end: {data.end} is below start {data.start}")
    for field in ("prefix", "prefixLength", "fromResourceId", "template"):
        if getattr(data, field) is not None:
            raise InvalidInput(f"{field}: not used for a {data.poolType}")
    domain = data.routingDomain if resource_type == "vlan" else "global"
    _check_name(session, resource_type, domain, data.name)
    root = ensure_root(session, resource_type, domain)
    blocks: list[str] = []
    overlap = f"range {data.start}-{data.end} overlaps an existing {resource_type} pool" + (
        f" in domain {domain!r}" if resource_type == "vlan" else ""
    )
    for start, k in decompose(data.start, data.end + 1):
        _claim(session, root, blocks, start, k, "start", f"range {data.start}-{data.end}", overlap)
    space = _new_space(
        session,
        data,
        resource_type=resource_type,
        role="pool",
        domain=domain,
        parent=root,
        lo=data.start,
        hi=data.end + 1,
        prefix=None,
        policy="first-fit",
    )
    session.execute(update(T).where(T.c.id.in_(blocks)).values(child_space_id=space.id))
    return space


def _create_identifier_pool(session: Session, data: PoolCreate) -> LogicalSpace:
    if data.template is None:
        raise InvalidInput("template: required for an identifierPool, e.g. 'CKT-{n:06d}'")
    check_template(data.template)
    for field in ("prefix", "prefixLength", "fromResourceId", "parentId"):
        if getattr(data, field) is not None:
            raise InvalidInput(f"{field}: not used for an identifierPool")
    start = 1 if data.start is None else data.start
    end = 10**9 - 1 if data.end is None else data.end
    if start < 0:
        raise InvalidInput(f"start: {start} must be >= 0")
    if end < start or end >= 1 << 63:
        raise InvalidInput(f"end: {end} must be between start and 2**63-1")
    _check_name(session, "identifier", "global", data.name)
    return _new_space(
        session,
        data,
        resource_type="identifier",
        role="pool",
        domain="global",
        parent=None,
        lo=start,
        hi=end + 1,
        prefix=None,
        policy="first-fit",
    )


def update_pool(session: Session, pool_id: str, data: PoolUpdate, actor: str) -> LogicalSpace:
    space = get_pool(session, pool_id, "id")
    changes = data.model_dump(exclude_unset=True)
    if space.role == "root" and changes:
        raise Conflict("a routing-domain root cannot be changed")
    if "name" in changes and changes["name"] != space.name:
        _check_name(session, space.resource_type, space.domain, changes["name"])
    for key, column in (
        ("name", "name"),
        ("purpose", "purpose"),
        ("site", "site"),
        ("description", "description"),
        ("allocationPolicy", "policy"),
        ("quarantineSeconds", "quarantine_seconds"),
    ):
        if key in changes:
            if changes[key] is None and column in ("name", "policy", "quarantine_seconds"):
                raise InvalidInput(f"{key}: cannot be removed")
            setattr(space, column, changes[key])
    space.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="resourcePool.update",
        resource_type="resourcePool",
        resource_id=space.id,
        details=changes,
    )
    publish(
        session,
        api=POOL_API,
        event_type="ResourcePoolAttributeValueChangeEvent",
        resource_type="resourcePool",
        resource=render_pool(space),
    )
    session.commit()
    return space


def delete_pool(session: Session, pool_id: str, actor: str) -> None:
    space = get_pool(session, pool_id, "id")
    if space.role == "root":
        raise Conflict("id: a routing-domain root cannot be deleted")
    busy = session.scalar(
        select(exists().where(T.c.space_id == space.id, T.c.state.notin_(["free", "end", "system"])))
    )
    if busy:
        raise Conflict(
            f"id: pool {space.name!r} still has allocations, reservations, quarantined blocks or child pools",
            reason="Pool in use",
        )
    document = render_pool(space)
    parent = session.get(LogicalSpace, space.parent_id) if space.parent_id else None
    holders = session.execute(select(T.c.id).where(T.c.child_space_id == space.id)).scalars().all()
    session.execute(T.delete().where(T.c.space_id == space.id))
    for holder_id in holders:
        row = chain.lock_block(session, holder_id)
        assert row is not None and parent is not None
        chain.free_block(session, parent.id, row.id, unhex(row.lo), row.k)
    session.delete(space)
    audit.record(
        session, actor=actor, action="resourcePool.delete", resource_type="resourcePool", resource_id=pool_id
    )
    publish(
        session,
        api=POOL_API,
        event_type="ResourcePoolDeleteEvent",
        resource_type="resourcePool",
        resource=document,
    )
    session.commit()


def utilization(session: Session, pool_id: str) -> dict[str, Any]:
    space = get_pool(session, pool_id, "id")
    chain.reclaim(session, space.id)
    session.commit()
    usage = chain.usage(session, space.id)
    total = unhex(space.hi) - unhex(space.lo)
    used = total - usage.get("free", 0)
    return {
        "id": space.id,
        "href": render_pool(space)["href"] + "/utilization",
        "@type": "ResourcePoolUtilization",
        "pool": {"id": space.id, "name": space.name, "prefix": space.prefix},
        "total": total,
        "free": usage.get("free", 0),
        "allocated": usage.get("allocated", 0),
        "reserved": usage.get("reserved", 0),
        "quarantine": usage.get("quarantine", 0),
        "childPools": usage.get("container", 0),
        "system": usage.get("system", 0),
        "utilizationPercent": round(100 * used / total, 4),
    }


# ------------------------------------------------------------------------------------ allocations


def plan_allocation(
    space: LogicalSpace, req: AllocationRequest | Any, field_prefix: str = ""
) -> tuple[int, int | None, str, str]:
    """Validate a request against a pool: (r, target or None, error label, description of what)."""
    f = field_prefix
    if space.role == "root":
        raise InvalidInput(f"{f}poolId: allocate from a pool, not from the routing domain itself")
    rt, lo, hi = space.resource_type, unhex(space.lo), unhex(space.hi)
    if rt in WIDTH:
        width = WIDTH[rt]
        pool_len = width - _log2(space)
        if getattr(req, "value", None) is not None:
            raise InvalidInput(f"{f}value: not used for IP pools; give prefix or prefixLength")
        if req.prefix:
            net = parse_address_or_network(req.prefix, f"{f}prefix")
            if family_of(net) != rt:
                raise InvalidInput(f"{f}prefix: {net} is {family_of(net)} but pool {space.name!r} is {rt}")
            if req.prefixLength is not None and req.prefixLength != net.prefixlen:
                raise InvalidInput(f"{f}prefixLength: {req.prefixLength} contradicts prefix {net}")
            nlo, nhi = network_range(net)
            if nlo < lo or nhi > hi:
                raise InvalidInput(f"{f}prefix: {net} is outside pool {space.prefix}")
            return width - net.prefixlen, nlo, f"{f}prefix", str(net)
        length = width if req.prefixLength is None else req.prefixLength
        if not pool_len <= length <= width:
            raise InvalidInput(
                f"{f}prefixLength: /{length} is outside pool {space.prefix} (allowed /{pool_len}-/{width})"
            )
        return width - length, None, f"{f}prefixLength", f"/{length}" if length < width else "address"
    if req.prefix is not None or req.prefixLength is not None:
        raise InvalidInput(f"{f}prefix: only IP pools take prefixes")
    value = getattr(req, "value", None)
    if value is not None:
        if rt == "vlan" and not 1 <= value <= 4094:
            raise InvalidInput(f"{f}value: {value} is invalid: {VLAN_RULE}")
        if not lo <= value < hi:
            raise InvalidInput(f"{f}value: {value} is outside pool {space.name!r} ({lo}-{hi - 1})")
        return 0, value, f"{f}value", f"{rt} {value}"
    return 0, None, f"{f}value", f"{rt}"


def allocate(
    session: Session, pool_id: str, req: AllocationRequest, actor: str
) -> tuple[chain.Taken, LogicalSpace]:
    """Allocate (or reserve with ``reservedUntil``) the next free or a specific block of a pool.

    On PostgreSQL the next free IPv4 block first tries ``fastpath.allocate`` (one statement, pool row
    cached and re-checked); when it declines (it then wrote nothing) the general path runs in the same
    transaction."""
    fast = fastpath.eligible(session, req.prefix, req.value)
    space = fastpath.cached_pool(pool_id) if fast else None
    if space is None:
        space = get_pool(session, pool_id)
        if fast:
            fastpath.remember(space)
    r, target, label, what = plan_allocation(space, req)
    if req.reservedUntil is not None and req.reservedUntil <= clock.now():
        raise InvalidInput("reservedUntil: must be in the future")
    if req.reservedUntil is not None and req.reservedUntil.tzinfo is None:
        raise InvalidInput("reservedUntil: needs a timezone offset")
    state = "reserved" if req.reservedUntil is not None else "allocated"
    if fast and fastpath.applies_to(space, target):
        fast_space, policy = space, req.allocationPolicy or space.policy

        def attempt() -> chain.Taken | None:
            taken = fastpath.allocate(
                session,
                fast_space,
                r,
                policy=policy,
                state=state,
                until=req.reservedUntil,
                service_id=req.serviceId,
                description=req.description,
                actor=actor,
                now=clock.now(),
            )
            if taken is not None:
                session.commit()
            return taken

        done = retry_on_deadlock(session, attempt)
        if done is not None:
            return done, fast_space
        fastpath.forget(space.id)  # the pool may have changed: the general path reads it again
        space = get_pool(session, space.id, fresh=True)
        r, target, label, what = plan_allocation(space, req)
    general_space = space
    return retry_on_deadlock(
        session, lambda: _allocate(session, general_space, req, actor, r, target, label, what, state)
    )


def retry_on_deadlock(session: Session, fn: Callable[[], _R], attempts: int = 5) -> _R:
    """Run a whole unit of work again if PostgreSQL broke a deadlock or a serialisation conflict."""
    for attempt in range(attempts):
        try:
            return fn()
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) not in ("40P01", "40001") or attempt == attempts - 1:
                raise
            session.rollback()
    raise AssertionError("unreachable")


def _allocate(
    session: Session,
    space: LogicalSpace,
    req: AllocationRequest,
    actor: str,
    r: int,
    target: int | None,
    label: str,
    what: str,
    state: str,
) -> tuple[chain.Taken, LogicalSpace]:
    taken = chain.take(
        session,
        space,
        r,
        policy=req.allocationPolicy or space.policy,
        target=target,
        state=state,
        until=req.reservedUntil,
        service_id=req.serviceId,
        description=req.description,
        label=label,
        what=what,
    )
    document = render_block(taken, space)
    audit.record(
        session,
        actor=actor,
        action=f"logicalResource.{'reserve' if state == 'reserved' else 'allocate'}",
        resource_type="logicalResource",
        resource_id=taken.id,
        details={"pool": space.id, "value": document["value"]},
    )
    publish(
        session,
        api=INVENTORY_API,
        event_type="ResourceCreateEvent",
        resource_type="resource",
        resource=document,
    )
    session.commit()
    return taken, space


def release(session: Session, block_id: str, actor: str) -> dict[str, Any]:
    """Release an allocated block into the pool's quarantine (or a direct reservation to free)."""
    row = chain.lock_block(session, block_id)
    if row is None or row.state not in ("allocated", "reserved", "quarantine", "container", "system"):
        raise NotFound(f"id: logicalResource {block_id!r} not found (nothing allocated under this id)")
    if row.state not in ("allocated", "reserved"):
        raise Conflict(
            f"id: logicalResource {block_id!r} is {row.state}, not allocated", reason="Not allocated"
        )
    if row.state == "reserved" and row.reservation_id:
        raise Conflict(f"id: reserved by resourceReservation {row.reservation_id}; release that instead")
    space = session.get(LogicalSpace, row.space_id)
    assert space is not None
    document = render_block(row, space)
    until = chain.release(session, space, row)
    document.update(
        lifecycleState="quarantine" if until else "free",
        quarantineUntil=until and until.isoformat(),
        resourceStatus="standby" if until else "available",
        usageState="idle",
    )
    audit.record(
        session,
        actor=actor,
        action="logicalResource.release",
        resource_type="logicalResource",
        resource_id=block_id,
        details={"value": document["value"], "quarantineUntil": until.isoformat() if until else None},
    )
    publish(
        session,
        api=INVENTORY_API,
        event_type="ResourceStateChangeEvent",
        resource_type="resource",
        resource=document,
    )
    session.commit()
    return document
