"""The one tenant filter. Every query on tenant data goes through `scoped`."""

from __future__ import annotations

from typing import Any, Protocol, Self, TypeVar


class _Filterable(Protocol):
    def where(self, *clauses: Any) -> Self: ...


S = TypeVar("S", bound=_Filterable)


def scoped(stmt: S, model: Any, location_id: str) -> S:
    """Restrict a statement on `model` to one location."""
    return stmt.where(model.location_id == location_id)
