"""Baseline of the policy benchmark: the service under the interim rule.

Before Cedar (issue #3) the rule was plain code: staff (or admins) of a town
may act on that town's residents and see every field; anyone else gets 404
(``git show d2e2dcd:src/shared_gov/policy/__init__.py``). That code is gone,
so this module puts it back by monkeypatching
:class:`shared_gov.policy.access.Access` — ``require``, ``field_view`` and
``readable`` — to allow every field without calling Cedar, then builds the
real application. Everything else (token verification, tenant registry,
permission snapshot, tenant binding, decryption, JSON) is the service's own
code, so "service ÷ interim" isolates what per-field Cedar decisions cost a
request.

Serve it the way the benchmark serves the service::

    granian --interface asgi --factory --workers 2 --working-dir bench _interim_app:create_app
"""

from __future__ import annotations

from litestar import Litestar

from shared_gov import errors
from shared_gov.domains import registry
from shared_gov.policy.access import Access, FieldView
from shared_gov.policy.requests import Decision

# The Access of a request is bound to its town (Access.town): the rule reads it
# there, as the service's own decisions do.

_STAFF_ROLES = frozenset({"staff", "admin"})
_ALLOWED = Decision(True, ("interim",))


_VIEWS: dict[str, FieldView] = {}


def _all_fields(record_type: str) -> FieldView:
    """Every field of the record type (built once per type, as the old constant was)."""
    view = _VIEWS.get(record_type)
    if view is None:
        view = FieldView(frozenset(registry.policy_fields(record_type or None)), (), {})
        _VIEWS[record_type] = view
    return view


def _interim_allows(access: Access) -> None:
    """The interim rule: staff of the Access's town; otherwise 404, never 403."""
    principal = access.principal
    if principal.tenant != access.town or not principal.roles & _STAFF_ROLES:
        raise errors.not_found()


def interim_require(
    self: Access,
    action: str,
    *,
    support_measure: bool = False,
    by_individual_number: bool = False,
    record_type: str = "",
) -> Decision:
    _interim_allows(self)
    self.decisions.append((action, _ALLOWED))
    return _ALLOWED


def interim_field_view(
    self: Access,
    support_measure: bool,
    state: str = "active",
    move_destination: str = "",
    linked: bool = False,
    record_type: str = "",
) -> FieldView:
    _interim_allows(self)
    return _all_fields(record_type)


def install() -> None:
    """Replace Cedar decisions by the interim rule in this process."""
    Access.require = interim_require  # type: ignore[method-assign]
    Access.field_view = interim_field_view  # type: ignore[method-assign]
    Access.readable = interim_field_view  # type: ignore[method-assign]


def create_app() -> Litestar:
    """The service, with the interim rule instead of Cedar."""
    install()
    from shared_gov.app import create_app as service_app

    return service_app()
