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

# ---- authentication: the development credentials every sandbox knows (printed by `sandbox up`, like Azurite's key) --
#: The tenant (directory) of the sandbox's identity service.
DEV_TENANT_ID: Final = "5a4db0c0-7e4a-4d1e-8c0f-000000005100"
#: The well-known development app registration: an admin app (control planes, the bridge's admin API) that is an
#: application user in mock Sales with the System Administrator role and a registered app in mock SCM.
DEV_CLIENT_ID: Final = "5a4db0c0-de00-4000-8000-00000000c11e"
#: Its client secret: public on purpose, like Azurite's account key; never a production secret.
DEV_CLIENT_SECRET: Final = "sandbox-dev-secret~not-for-production"
#: The bridge's own app registration: its tokens make a caller the integration identity in both mocks.
BRIDGE_CLIENT_ID: Final = "5a4db0c0-d0a1-4000-8000-00000000b41d"
#: The bridge's client secret (well known too: the sandbox runs on a developer's machine).
BRIDGE_CLIENT_SECRET: Final = "sandbox-bridge-secret~not-for-production"
#: The identity a caller has in mock Sales when its token's app is the well-known development app.
DEV_IDENTITY: Final = "user"
