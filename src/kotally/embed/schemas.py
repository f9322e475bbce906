"""Request and response forms of the staff embed."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from kotally.contacts.read_repository import LotRow
from kotally.db.models import Location
from kotally.embed.crypto import PAYLOAD_CHARS_MAX
from kotally.kit.clock import isoformat

# A CryptoJS string of PAYLOAD_CHARS_MAX characters, quoted, fits well within this.
SESSION_BODY_BYTES_MAX = 16 * 1024


class SessionRequest(BaseModel):
    """POST /embed/session: the encrypted string GHL handed the page, as it came."""

    model_config = ConfigDict(extra="forbid")

    payload: Annotated[str, Field(min_length=1, max_length=PAYLOAD_CHARS_MAX, strict=True)]


def balance(config_id: str, name: str, config_type: str, rows: list[LotRow]) -> dict[str, Any]:
    """One product config's usable credits for a contact, and when the soonest of them expire."""
    expiries = [row.lot.expires_at for row in rows if row.lot.expires_at is not None]
    return {
        "product_config_id": config_id,
        "product_config_name": name,
        "type": config_type,
        "credits_available": sum(row.lot.credits_remaining for row in rows),
        "lots": len(rows),
        "next_expires_at": isoformat(min(expiries)) if expiries else None,
    }


def location(row: Location) -> dict[str, Any]:
    """What the page shows of its location: the name in its header, times in its zone."""
    return {"id": row.id, "name": row.name, "timezone": row.timezone}
