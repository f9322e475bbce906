"""The one tenant filter. Every query on tenant data goes through `scoped`."""

from __future__ import annotations

from typing import Any, Protocol, Self, TypeVar

from sqlalchemy import BindParameter


class _Filterable(Protocol):
    def where(self, *clauses: Any) -> Self: ...


S = TypeVar("S", bound=_Filterable)


def scoped(stmt: S, model: Any, location_id: str | BindParameter[str]) -> S:
    """Restrict a statement on `model` to one location.

    `location_id` may be a bound parameter, for a statement built once and run with a value.
    """
    return stmt.where(model.location_id == location_id)
