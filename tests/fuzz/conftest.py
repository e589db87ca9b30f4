"""One bridged stack per fuzz module (restored from the golden databases): hypothesis runs many examples
against it, so examples share its state, and a test clears what would bleed into the next (faults).

The stack checks tokens, as ``sandbox up``'s does, and every app's test client sends the well-known development
app's token (an admin, an application user in Sales, registered in SCM), so hostile requests reach the code
behind authentication; the hostile identity headers they carry change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from leadtocash.stack import Stack
from tests.golden import Golden


@pytest.fixture(scope="module")
def stack(golden: Golden, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    restored = golden.stack(tmp_path_factory.mktemp("fuzz") / "bridge.sqlite", auth=True)
    token = restored.token("http://localhost")  # the test clients' default host

    class Authenticated(FlaskClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"

    for app in restored.apps.values():
        app.test_client_class = Authenticated
    yield restored
    restored.close()
