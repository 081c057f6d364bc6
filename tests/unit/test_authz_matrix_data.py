"""Issue 15 item 3: the permission matrix as data (no database): its roles, rules and validation."""

from __future__ import annotations

from typing import Any

import pytest

from turnup.security.permissions import (
    APPROVAL_STEPS,
    CONFINED_PERMISSIONS,
    PERMISSIONS,
    ROLE_PERMISSIONS,
    Principal,
    _load,
    confined_permissions,
    effective_permissions,
    has_confined_permission,
    has_permission,
    may_decide_step,
)


def test_the_matrix_names_the_people_and_the_permissions_of_other_features() -> None:
    people = {
        "operations", "product", "customer_success", "customer_service", "finance", "legal", "it",
        "technician", "sales", "sales_manager", "customer",
    }  # fmt: skip
    kept = {"admin", "viewer", "operator", "approver", "compliance_officer"}
    assert people | kept <= set(ROLE_PERMISSIONS)
    for name in (
        "billing:read", "billing:write", "billing:run", "usage:read", "usage:write", "revenue:read",
        "revenue:write", "audit:read", "security:admin", "dispatch:read", "dispatch:write",
        "reconciliation:run",
    ):  # fmt: skip
        assert name in PERMISSIONS


@pytest.mark.parametrize(
    ("role", "permission", "granted"),
    [
        ("sales", "quotes:write", True),  # prices quotes
        ("sales", "quotes:accept", False),
        ("sales_manager", "approvals:approve", True),
        ("finance", "revenue:read", True),
        ("sales", "revenue:read", False),
        ("finance", "billing:run", True),
        ("operations", "reconciliation:run", True),
        ("technician", "dispatch:write", True),
        ("sales", "dispatch:write", False),
        ("product", "catalog:write", True),
        ("sales", "catalog:write", False),
        ("operator", "approvals:admin", False),
        ("operator", "accounts:delete", False),
        ("product", "approvals:admin", True),
        ("customer_success", "accounts:delete", True),
        ("it", "security:admin", True),
        ("operations", "security:admin", False),
        ("customer", "accounts:read", False),  # only confined
        ("customer", "portal:read", True),
        ("viewer", "quotes:write", False),
    ],
)
def test_matrix_rules(role: str, permission: str, granted: bool) -> None:
    assert has_permission(Principal("u", "u", (role,)), permission) is granted


def test_customer_role_holds_customer_data_only_confined() -> None:
    customer = Principal("u", "u", ("customer",))
    assert CONFINED_PERMISSIONS["customer"] == {
        "accounts:read", "quotes:read", "agreements:read", "ordering:read", "services:read",
    }  # fmt: skip
    assert all(has_confined_permission(customer, p) for p in CONFINED_PERMISSIONS["customer"])
    assert not has_permission(customer, "accounts:read")


def test_approval_steps_are_bound_to_roles_admin_is_not() -> None:
    assert APPROVAL_STEPS == {
        "salesManager": ["sales_manager"],
        "finance": ["finance"],
        "commercialDirector": ["commercial_director"],
        "legal": ["legal"],
    }
    assert all("admin" not in roles and "it" not in roles for roles in APPROVAL_STEPS.values())


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"permissions": {"a:read": ""}, "roles": {"r": {"permissions": ["a:write"]}}}, "unknown permission"),
        ({"permissions": {"a:read": ""}, "roles": {"r": {"permissions": ["b:*"]}}}, "unknown permission"),
        (
            {"permissions": {"a:read": ""}, "roles": {"r": {}}, "approvalSteps": {"s": ["nobody"]}},
            "unknown role",
        ),
        ([], "expected a mapping"),
    ],
)
def test_a_matrix_naming_unknown_things_is_refused(document: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _load(document)


def test_effective_permissions_expand_wildcards_over_the_catalogue() -> None:
    assert effective_permissions(["admin"]) == sorted(PERMISSIONS)
    viewer = effective_permissions(["viewer"])
    assert viewer == sorted(p for p in PERMISSIONS if p.endswith(":read"))
    assert effective_permissions(["customer"]) == ["portal:read"]
    assert confined_permissions(["customer"]) == sorted(CONFINED_PERMISSIONS["customer"])
    assert confined_permissions(["customer", "viewer"]) == []  # a viewer reads them everywhere


def test_deciding_a_step_needs_a_bound_role() -> None:
    assert may_decide_step(["sales", "sales_manager"], "salesManager")
    assert not may_decide_step(["admin"], "salesManager")
    assert not may_decide_step(["finance"], "salesManager")
    assert not may_decide_step(["salesManager"], "salesManager")  # a step name is not a role
    assert not may_decide_step(["admin"], "unknownStep")
