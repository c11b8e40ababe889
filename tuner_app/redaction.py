"""Secrets kept out of what tuner-app prints or logs: a password in a store URI
(postgresql://user:PASSWORD@host/db) is shown as ***."""

from __future__ import annotations

import re

# scheme://user:password@  ->  scheme://user:***@ (the password may hold anything but "@" and "/")
_PASSWORD_IN_URI = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/@:\s]*:)(?P<password>[^@/\s]+)(?P<at>@)")


def redact(text: str) -> str:
    """`text` with the password of every URI in it replaced by ***."""
    return _PASSWORD_IN_URI.sub(r"\g<head>***\g<at>", str(text))
