"""What every command group shares: settings, the database session, error handling, output."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from kotally.config import Settings, get_settings
from kotally.db.engine import Database
from kotally.db.migrate import is_at_head
from kotally.errors import OperatorError
from kotally.kit.clock import Clock, SystemClock

F = TypeVar("F", bound=Callable[..., Any])
CLOCK: Clock = SystemClock()  # tests replace it with a frozen clock


def clock() -> Clock:
    return CLOCK


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid KOTALLY_ settings: {exc}") from exc


def database() -> Database:
    try:
        return Database(load_settings())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def require_migrated(db: Database) -> None:
    if not is_at_head(db.engine):
        raise click.ClickException("the database is not migrated: run `kotally migrate` first")


@contextmanager
def open_session(*, write: bool = True) -> Iterator[Session]:
    db = database()
    try:
        require_migrated(db)
        with db.unit_of_work(write=write) as s:
            yield s
    finally:
        db.dispose()


def operator_errors(func: F) -> F:
    """Refusals and database trouble become one clear line and a non-zero exit."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OperatorError as exc:
            raise click.ClickException(str(exc)) from exc
        except DBAPIError as exc:
            detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise click.ClickException(f"database error: {detail}") from exc

    return wrapper  # type: ignore[return-value]


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def with_options(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    def apply(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return apply
