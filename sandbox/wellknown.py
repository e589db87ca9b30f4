"""Names every layer agrees on: the identities the services treat specially and the default legal entity.

One definition each, so the bridge, both mocks, the clients and the scenarios cannot drift apart.
"""

from __future__ import annotations

from typing import Final

#: The dual-write integration identity: the bridge writes as it, and its writes are never synced back.
INTEGRATION_IDENTITY: Final = "dualwrite"
#: The identity of the seeder and of the services' own background work.
SYSTEM_IDENTITY: Final = "system"
#: The default legal entity (``dataAreaId``) of mock SCM, as in Microsoft's demo data.
DEFAULT_COMPANY: Final = "usmf"
