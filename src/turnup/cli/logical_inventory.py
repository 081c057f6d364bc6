"""``turnup ip …``, ``turnup numbers …``, ``turnup pools …``: logical inventory from the command line."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import select

from turnup.cli.common import CLI_ACTOR, cli_session, console, validated
from turnup.inventory.logical import numbers, reservations, services
from turnup.inventory.logical.orm import LogicalSpace
from turnup.inventory.logical.render import render_block, render_number
from turnup.inventory.logical.schemas import (
    AllocationRequest,
    NumberClassCreate,
    NumberImport,
    NumberSearch,
    NumberUpdate,
    PoolCreate,
)
from turnup.kernel import clock

ip_app = typer.Typer(
    help="IP address management: aggregates, pools, subnets, allocations.", no_args_is_help=True
)
numbers_app = typer.Typer(
    help="Telephone numbers: import, search, lifecycle, block pooling.", no_args_is_help=True
)
pools_app = typer.Typer(help="VLAN, ASN and identifier pools; reservations.", no_args_is_help=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _pool_table(rows: list[LogicalSpace]) -> Table:
    table = Table("id", "type", "name", "domain", "range", "purpose", "site")
    for s in rows:
        from turnup.inventory.logical.render import render_pool

        doc = render_pool(s)
        span = s.prefix or f"{doc['start']}-{doc['end']}"
        table.add_row(s.id, doc["poolType"], s.name, s.domain, span, s.purpose or "", s.site or "")
    return table


# -------------------------------------------------------------------------------------------- ip


def _create(**values: object) -> None:
    data = validated(PoolCreate, **values)
    with cli_session() as session:
        space = services.create_pool(session, data, CLI_ACTOR)
        console.print(f"Created {data.poolType} [bold]{space.name}[/] {space.prefix or ''} id={space.id}")


@ip_app.command("aggregate")
def ip_aggregate(
    prefix: str,
    name: str = typer.Option(...),
    vrf: str = typer.Option("default"),
    description: str | None = typer.Option(None),
) -> None:
    """Add an aggregate (e.g. 10.0.0.0/8) to a routing domain (VRF)."""
    _create(poolType="ipAggregate", name=name, prefix=prefix, routingDomain=vrf, description=description)


@ip_app.command("pool")
def ip_pool(
    prefix: str,
    name: str = typer.Option(...),
    vrf: str = typer.Option("default"),
    purpose: str | None = typer.Option(None),
    site: str | None = typer.Option(None),
    quarantine_days: int = typer.Option(0, help="days a released prefix stays unusable"),
    policy: str | None = typer.Option(None, help="best-fit | first-fit"),
) -> None:
    """Add a pool inside an aggregate."""
    _create(
        poolType="ipPool",
        name=name,
        prefix=prefix,
        routingDomain=vrf,
        purpose=purpose,
        site=site,
        quarantineSeconds=quarantine_days * 86400,
        allocationPolicy=policy,
    )


@ip_app.command("subnet")
def ip_subnet(
    prefix: str,
    name: str = typer.Option(...),
    vrf: str = typer.Option("default"),
    quarantine_days: int = typer.Option(0),
) -> None:
    """Add a subnet (host addresses are allocated from it) inside a pool."""
    _create(
        poolType="ipSubnet",
        name=name,
        prefix=prefix,
        routingDomain=vrf,
        quarantineSeconds=quarantine_days * 86400,
    )


@ip_app.command("allocate")
def ip_allocate(
    pool_id: str,
    length: int | None = typer.Option(None, "--length", help="prefix length"),
    prefix: str | None = typer.Option(None, help="a specific prefix or address"),
    count: int = typer.Option(1, help="how many"),
    policy: str | None = typer.Option(None),
    service: str | None = typer.Option(None),
    description: str | None = typer.Option(None),
) -> None:
    """Allocate the next free prefix (--length), a specific --prefix, or host addresses (neither)."""
    data = validated(
        AllocationRequest,
        prefixLength=length,
        prefix=prefix,
        allocationPolicy=policy,
        serviceId=service,
        description=description,
    )
    with cli_session() as session, _progress() as progress:
        task = progress.add_task("allocating", total=count)
        for _ in range(count):
            taken, space = services.allocate(session, pool_id, data, CLI_ACTOR)
            console.print(f"{render_block(taken, space)['value']}  id={taken.id}")
            progress.advance(task)


@ip_app.command("release")
def ip_release(resource_id: str) -> None:
    """Release an allocation (into the pool's quarantine)."""
    with cli_session() as session:
        doc = services.release(session, resource_id, CLI_ACTOR)
        console.print(
            f"Released {doc['value']} -> {doc['lifecycleState']} {doc.get('quarantineUntil') or ''}"
        )


@ip_app.command("util")
def ip_util(pool_id: str) -> None:
    """Utilisation of a pool."""
    with cli_session() as session:
        u = services.utilization(session, pool_id)
        console.print(
            f"{u['pool']['name']} {u['pool']['prefix'] or ''}: {u['utilizationPercent']}% used "
            f"(allocated {u['allocated']}, reserved {u['reserved']}, quarantine {u['quarantine']}, "
            f"child pools {u['childPools']}, free {u['free']} of {u['total']})"
        )


@ip_app.command("list")
def ip_list(vrf: str | None = typer.Option(None)) -> None:
    """List IP aggregates, pools and subnets."""
    with cli_session() as session:
        stmt = (
            select(LogicalSpace)
            .where(LogicalSpace.resource_type.in_(["ipv4", "ipv6"]), LogicalSpace.role != "root")
            .order_by(LogicalSpace.lo)
        )
        if vrf:
            stmt = stmt.where(LogicalSpace.domain == vrf)
        console.print(_pool_table(list(session.scalars(stmt))))


# --------------------------------------------------------------------------------------- numbers


@numbers_app.command("import")
def numbers_import(
    start: str | None = typer.Argument(None, help="first number (E.164, or national with --country)"),
    end: str | None = typer.Argument(None, help="last number (inclusive)"),
    block: list[str] = typer.Option([], "--block", help="a thousands-block (all digits but the last 3)"),
    file: Path | None = typer.Option(None, help="CSV of start,end ranges (bulk import)"),
    country: str | None = typer.Option(None),
    number_class: str = typer.Option("residential", "--class"),
    status: str = typer.Option("available", help="available | port_in_pending"),
) -> None:
    """Import ranges or thousands-blocks, with a progress bar."""
    jobs: list[dict[str, object]] = []
    if start:
        jobs.append({"start": start, "end": end})
    jobs.extend({"thousandsBlock": b} for b in block)
    if file:
        with file.open() as handle:
            for i, row in enumerate(csv.reader(handle), start=1):
                if row and not row[0].startswith("#"):
                    jobs.append(
                        {
                            "start": row[0].strip(),
                            "end": (row[1].strip() if len(row) > 1 else None),
                            "_line": i,
                        }
                    )
    if not jobs:
        raise typer.BadParameter("give START [END], --block or --file")
    inputs = []
    for job in jobs:
        line = job.pop("_line", None)
        data = validated(NumberImport, country=country, numberClass=number_class, status=status, **job)
        inputs.append((line, data))
    total = 0
    with cli_session() as session, _progress() as progress:
        task = progress.add_task("importing", total=None)
        for line, data in inputs:
            try:
                result = numbers.import_numbers(
                    session, data, CLI_ACTOR, commit=False, progress=lambda n: progress.advance(task, n)
                )
            except Exception as exc:
                if line is not None and hasattr(exc, "message"):
                    exc.message = f"line {line}: {exc.message}"
                raise
            total += result["count"]
        session.commit()  # every range or none
    console.print(f"Imported [bold]{total}[/] numbers")


@numbers_app.command("search")
def numbers_search(
    country: str | None = typer.Option(None),
    area: str | None = typer.Option(None),
    pattern: str | None = typer.Option(None, help="digits/letters, ? one digit, * any"),
    prefix: str | None = typer.Option(None),
    min_repeat: int | None = typer.Option(None),
    golden: bool | None = typer.Option(None),
    status: str = typer.Option("available"),
    limit: int = typer.Option(20),
) -> None:
    """Search numbers by country, area, pattern (vanity words), repeated digits or golden numbers."""
    q = validated(
        NumberSearch,
        country=country,
        area=area,
        pattern=pattern,
        prefix=prefix,
        minRepeat=min_repeat,
        golden=golden,
        status=status,
        limit=limit,
    )
    with cli_session() as session:
        numbers.sweep(session)
        table = Table("number", "national", "country", "class", "state", "golden", "id")
        for n in numbers.search(session, q):
            doc = render_number(n)
            table.add_row(
                doc["value"],
                doc["nationalFormat"],
                n.region,
                n.number_class,
                n.state,
                "yes" if n.golden else "",
                n.id,
            )
        console.print(table)


@numbers_app.command("set-status")
def numbers_set_status(number_id: str, status: str, service: str | None = typer.Option(None)) -> None:
    """Move a number through its lifecycle (assigned, aging, ported_out, disconnected, …)."""
    data = validated(NumberUpdate, status=status, serviceId=service)
    with cli_session() as session:
        n = numbers.update_number(session, number_id, data, CLI_ACTOR)
        console.print(f"+{n.digits} is now [bold]{n.state}[/]")


@numbers_app.command("class")
def numbers_class(name: str, aging_days: int = typer.Option(..., help=">= 45")) -> None:
    """Create a number class with its aging period."""
    data = validated(NumberClassCreate, name=name, agingDays=aging_days)
    with cli_session() as session:
        numbers.create_number_class(session, data, CLI_ACTOR)
        console.print(f"Number class [bold]{name}[/]: {aging_days} days aging")


@numbers_app.command("pooling-report")
def numbers_pooling_report(
    threshold: float = typer.Option(10.0), country: str | None = typer.Option(None)
) -> None:
    """Thousands-blocks under THRESHOLD % used that can be donated."""
    with cli_session() as session:
        table = Table("block", "country", "class", "used", "%")
        for b in numbers.pooling_report(session, threshold, country):
            table.add_row(
                b["prefix"] + "xxx",
                b["country"],
                b["numberClass"],
                str(b["used"]),
                str(b["utilizationPercent"]),
            )
        console.print(table)


# ----------------------------------------------------------------------------------------- pools


@pools_app.command("vlan")
def pools_vlan(
    start: int,
    end: int,
    name: str = typer.Option(...),
    domain: str = typer.Option("default"),
    quarantine_days: int = typer.Option(0),
) -> None:
    """Add a VLAN pool (ids 1-4094) in a VLAN domain."""
    _create(
        poolType="vlanPool",
        name=name,
        start=start,
        end=end,
        routingDomain=domain,
        quarantineSeconds=quarantine_days * 86400,
    )


@pools_app.command("asn")
def pools_asn(
    start: int, end: int, name: str = typer.Option(...), quarantine_days: int = typer.Option(0)
) -> None:
    """Add an ASN pool (16-bit or 32-bit range; never materialised)."""
    _create(poolType="asnPool", name=name, start=start, end=end, quarantineSeconds=quarantine_days * 86400)


@pools_app.command("identifier")
def pools_identifier(
    name: str,
    template: str = typer.Option(..., help="e.g. 'CKT-{n:06d}'"),
    start: int = typer.Option(1),
    end: int | None = typer.Option(None),
) -> None:
    """Add a pool of formatted identifiers (circuit ids, …)."""
    _create(poolType="identifierPool", name=name, template=template, start=start, end=end)


@pools_app.command("allocate")
def pools_allocate(
    pool_id: str,
    value: int | None = typer.Option(None, help="a specific id"),
    count: int = typer.Option(1),
    service: str | None = typer.Option(None),
) -> None:
    """Allocate the next free (or a specific) VLAN, ASN or identifier."""
    data = validated(AllocationRequest, value=value, serviceId=service)
    with cli_session() as session, _progress() as progress:
        task = progress.add_task("allocating", total=count)
        for _ in range(count):
            taken, space = services.allocate(session, pool_id, data, CLI_ACTOR)
            console.print(f"{render_block(taken, space)['value']}  id={taken.id}")
            progress.advance(task)


@pools_app.command("release")
def pools_release(resource_id: str) -> None:
    """Release an allocation (into the pool's quarantine)."""
    ip_release(resource_id)


@pools_app.command("list")
def pools_list(kind: str | None = typer.Option(None, help="vlan | asn | identifier")) -> None:
    """List VLAN, ASN and identifier pools."""
    with cli_session() as session:
        stmt = (
            select(LogicalSpace)
            .where(
                LogicalSpace.resource_type.in_([kind] if kind else ["vlan", "asn", "identifier"]),
                LogicalSpace.role != "root",
            )
            .order_by(LogicalSpace.name)
        )
        console.print(_pool_table(list(session.scalars(stmt))))


@pools_app.command("reserve")
def pools_reserve(
    pool_id: list[str] = typer.Option(..., "--pool", help="one line per pool (repeatable)"),
    hours: float = typer.Option(24.0, help="expiry from now"),
) -> None:
    """Reserve the next free resource of each given pool, all or nothing."""
    with cli_session() as session:
        lines = []
        for pid in pool_id:
            space = services.get_pool(session, pid)
            kind = {"ipv4": "ipAddress", "ipv6": "ipAddress"}.get(space.resource_type, space.resource_type)
            lines.append(reservations.ReserveLine(kind, {"poolId": pid}))
        r = reservations.reserve(session, lines, clock.now() + timedelta(hours=hours), CLI_ACTOR)
        console.print(
            f"Reservation {r.id} until {r.expires_at.isoformat()}: " + ", ".join(i.value for i in r.items)
        )
