"""`kotally admin …`, the demo owner, and the audit rows the CLI's changes leave."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner, Result

import kotally.cli as cli_module
from kotally.admin import passwords
from kotally.cli import common as cli_common
from kotally.config import get_settings
from kotally.db.engine import Database
from kotally.db.models import AdminUser, AuditEntry
from kotally.kit.clock import FrozenClock
from tests.conftest import TEST_SECRET
from tests.factories import rows

Run = Callable[..., Result]
PASSWORD = "correct-horse-battery"


@pytest.fixture
def kotally(
    monkeypatch: pytest.MonkeyPatch, clock: FrozenClock, database_url: str
) -> Iterator[Run]:
    monkeypatch.setenv("KOTALLY_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("KOTALLY_DATABASE_URL", database_url)
    monkeypatch.setattr(cli_common, "CLOCK", clock)
    runner = CliRunner()

    def invoke(command: str, stdin: str | None = None) -> Result:
        get_settings.cache_clear()
        return runner.invoke(cli_module.main, shlex.split(command), input=stdin)

    yield invoke
    get_settings.cache_clear()


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_create_user_from_stdin_hashes_with_argon2id(kotally: Run, db: Database) -> None:
    out = _ok(
        kotally(
            "admin create-user --email Ada@Example.com --role owner --password-stdin",
            f"{PASSWORD}\n",
        )
    )
    assert "ada@example.com created" in out.output
    [user] = rows(db, AdminUser)
    assert user.email == "ada@example.com"
    assert user.password_hash.startswith("$argon2id$")
    assert passwords.verify(user.password_hash, PASSWORD)
    assert not passwords.verify(user.password_hash, PASSWORD + "\n")


def test_create_user_prompts_for_the_password_twice(kotally: Run, db: Database) -> None:
    _ok(
        kotally(
            "admin create-user --email a@example.com --role viewer", f"{PASSWORD}\n{PASSWORD}\n"
        )
    )
    assert passwords.verify(rows(db, AdminUser)[0].password_hash, PASSWORD)


@pytest.mark.parametrize(
    ("command", "stdin", "message"),
    [
        ("--email a@example.com --role owner", "short\n", "at least 12 characters"),
        ("--email not-an-email --role owner", f"{PASSWORD}\n", "email must look like"),
        ("--email a@example.com --role boss", f"{PASSWORD}\n", "Invalid value for '--role'"),
    ],
)
def test_create_user_refusals(
    kotally: Run, db: Database, command: str, stdin: str, message: str
) -> None:
    result = kotally(f"admin create-user {command} --password-stdin", stdin)
    assert result.exit_code != 0
    assert message in result.output
    assert rows(db, AdminUser) == []


def test_a_duplicate_email_in_another_case_is_refused(kotally: Run) -> None:
    _ok(kotally("admin create-user --email a@example.com --role owner --password-stdin", PASSWORD))
    result = kotally(
        "admin create-user --email A@EXAMPLE.COM --role viewer --password-stdin", PASSWORD
    )
    assert result.exit_code == 1
    assert "already exists" in result.output


def test_list_set_role_deactivate_and_reset(kotally: Run, db: Database) -> None:
    for email, role in (("o@example.com", "owner"), ("v@example.com", "viewer")):
        _ok(kotally(f"admin create-user --email {email} --role {role} --password-stdin", PASSWORD))
    _ok(kotally("admin set-role v@example.com admin"))
    _ok(kotally("admin deactivate-user v@example.com"))
    _ok(kotally("admin reset-password o@example.com --password-stdin", "another-long-password\n"))
    listed = json.loads(_ok(kotally("admin list-users")).stdout)
    assert [(u["email"], u["role"], u["active"]) for u in listed] == [
        ("o@example.com", "owner", True),
        ("v@example.com", "admin", False),
    ]
    assert "password" not in json.dumps(listed).replace("password_", "")
    [owner] = rows(db, AdminUser, AdminUser.email == "o@example.com")
    assert passwords.verify(owner.password_hash, "another-long-password")
    actions = [(e.action, e.entity_id) for e in rows(db, AuditEntry)]
    assert actions == [
        ("admin_user.create", "o@example.com"),
        ("admin_user.create", "v@example.com"),
        ("admin_user.set_role", "v@example.com"),
        ("admin_user.deactivate", "v@example.com"),
        ("admin_user.reset_password", "o@example.com"),
    ]
    assert all(e.actor.startswith("cli") for e in rows(db, AuditEntry))


def test_the_last_owner_cannot_be_demoted_or_deactivated(kotally: Run) -> None:
    _ok(kotally("admin create-user --email o@example.com --role owner --password-stdin", PASSWORD))
    for command in ("admin set-role o@example.com viewer", "admin deactivate-user o@example.com"):
        result = kotally(command)
        assert result.exit_code == 1
        assert "last active owner" in result.output


def test_an_unknown_user(kotally: Run) -> None:
    result = kotally("admin set-role nobody@example.com viewer")
    assert result.exit_code == 1
    assert "no admin user" in result.output


def test_demo_makes_an_owner_with_a_fresh_password_each_run(kotally: Run, db: Database) -> None:
    first = _ok(kotally("demo")).output
    second = _ok(kotally("demo")).output
    assert "http://127.0.0.1:8000/admin" in first
    pw1 = first.split("(reset on every run):\n")[1].split()[0]
    pw2 = second.split("(reset on every run):\n")[1].split()[0]
    assert pw1 != pw2
    [user] = rows(db, AdminUser)
    assert (user.email, user.role) == ("demo@kotally.local", "owner")
    assert passwords.verify(user.password_hash, pw2)
    assert not passwords.verify(user.password_hash, pw1)


def test_cli_changes_are_audited(kotally: Run, db: Database) -> None:
    _ok(kotally("location create --id loc_9 --name Nine"))
    _ok(kotally("location update loc_9 --timezone Europe/Berlin"))
    _ok(kotally("config create --location loc_9 --id pc_1 --name P --type package --credits 3"))
    _ok(kotally("config deactivate pc_1 --location loc_9"))
    created = _ok(kotally("client create --location loc_9 --name c --scopes check --json"))
    client_id = json.loads(created.stdout)["client_id"]
    _ok(kotally(f"client rotate {client_id}"))
    _ok(kotally(f"client deactivate {client_id}"))
    entries = rows(db, AuditEntry)
    assert [e.action for e in entries] == [
        "location.create",
        "location.update",
        "product_config.create",
        "product_config.deactivate",
        "api_client.create",
        "api_client.rotate",
        "api_client.deactivate",
    ]
    update = entries[1]
    assert update.before is not None
    assert update.after is not None
    assert (update.before["timezone"], update.after["timezone"]) == ("UTC", "Europe/Berlin")
    assert {e.location_id for e in entries} == {"loc_9"}
