"""Which origins may frame the staff embed: the CSP `frame-ancestors` list.

Kept free of other Kotally imports: config.py validates KOTALLY_EMBED_FRAME_ANCESTORS with it.
"""

from __future__ import annotations

import re

# GHL's app origins: custom pages open inside app.gohighlevel.com, its agency subdomains and the
# LeadConnector white-label hosts. A studio on its own white-label domain adds that domain.
DEFAULT_FRAME_ANCESTORS = (
    "https://app.gohighlevel.com https://*.gohighlevel.com "
    "https://app.leadconnectorhq.com https://*.leadconnectorhq.com"
)
ORIGINS_MAX = 32
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# scheme://host[:port], host optionally starting with one `*.` wildcard label (CSP host-source).
_ORIGIN = re.compile(rf"^https?://(?:\*\.)?{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?$")


def parse_frame_ancestors(value: str) -> str:
    """The list normalised to single spaces; ValueError naming the first entry that is no origin.

    Only origins: no paths, no `*` alone, no quotes or semicolons (which would let the setting
    add other CSP directives to the header).
    """
    origins = value.split()
    if not origins:
        raise ValueError("must list at least one origin, e.g. https://app.gohighlevel.com")
    if len(origins) > ORIGINS_MAX:
        raise ValueError(f"must list at most {ORIGINS_MAX} origins")
    for origin in origins:
        if not _ORIGIN.match(origin):
            raise ValueError(
                f"{origin!r} is not an origin: use scheme://host[:port], e.g. "
                "https://app.example.com or https://*.example.com"
            )
    return " ".join(origins)
