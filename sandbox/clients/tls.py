"""What httpx's ``verify`` takes, from what a user gives (a CA file's path, True, False or an SSL context)."""

from __future__ import annotations

import ssl
from typing import Any


def verify_option(verify: Any) -> Any:
    """A CA file's path becomes an SSL context trusting it (httpx deprecates paths); anything else is kept."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify
