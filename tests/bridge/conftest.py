"""Fixtures of the bridge tests: the whole sandbox in one process, the bridge's state in a file per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from leadtocash.stack import Stack, wire_bridge
from sandbox.clients import ControlClient, SalesClient, ScmClient
from tests.golden import Golden

CUSTOMERS = "customers-accounts"


@dataclass
class Sandbox:
    """One in-process sandbox and the clients a test drives it with."""

    stack: Stack
    bridge_db: str
    sales: SalesClient
    scm: ScmClient
    sales_control: ControlClient
    scm_control: ControlClient

    @property
    def runtime(self) -> Any:
        return self.stack.apps["bridge"].extensions["bridge"]

    @property
    def bridge(self) -> Any:
        """A Flask test client on the bridge app."""
        return self.stack.apps["bridge"].test_client()

    def restart_bridge(self) -> Any:
        """A new bridge on the same database file, as after a kill: the old one is abandoned, not closed
        cleanly (only its drainer threads are stopped so they cannot interfere)."""
        self.runtime.worker.stop()
        old = self.stack.apps["bridge"]
        self.stack.apps["bridge"] = wire_bridge(self.stack.apps, bridge_database_url=self.bridge_db)
        self.runtime.worker.poll_wait = 0.2
        self._abandoned.append(old)
        return self.runtime

    _abandoned: list[Any] = None  # type: ignore[assignment]

    # ---- SCM customers (usmf: the SCM default company, so keyed writes need no cross-company) ----------
    def create_customer(self, account: str, name: str, group: str = "10") -> dict[str, Any]:
        return self.scm.create(
            "CustomersV3",
            {
                "dataAreaId": "usmf",
                "CustomerAccount": account,
                "OrganizationName": name,
                "CustomerGroupId": group,
                "SalesCurrencyCode": "USD",
            },
        )

    def rename_customer(self, account: str, name: str) -> None:
        self.scm.update("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": account}, {"OrganizationName": name})

    def account(self, number: str) -> dict[str, Any] | None:
        """The Sales account with this number in company usmf (None when absent)."""
        company = self.runtime.engine.company_id("usmf")
        rows = self.sales.query("accounts", filter=f"accountnumber eq '{number}' and _msdyn_company_value eq {company}")
        return rows[0] if rows else None

    def account_name(self, number: str) -> str | None:
        row = self.account(number)
        return row["name"] if row else None

    def scm_changes(self, after: int = 0) -> list[dict[str, Any]]:
        """The user's (not the bridge's) changes of SCM customers after ``after``."""
        return self.scm_control.changes(after=after, limit=5000, tables=["CustomerV3"], exclude_identity="dualwrite")[
            "changes"
        ]

    def bridge_writes_to_sales(self, after: int) -> list[dict[str, Any]]:
        """Account writes the bridge made in Sales after seq ``after`` (each one is a real write)."""
        changes = self.sales_control.changes(after=after, limit=5000, tables=["account"])["changes"]
        return [c for c in changes if c["identity"] == "dualwrite"]

    def sales_seq(self) -> int:
        return int(self.sales_control.changes(after=0, limit=1)["latest"])


@pytest.fixture
def sandbox(tmp_path: Path, golden: Golden) -> Iterator[Sandbox]:
    """Sales, SCM and the bridge wired in-process, the shipped maps running live (initial sync done, SCM
    master), as `sandbox up` has them: a private copy of the session's golden stack."""
    bridge_file = tmp_path / "bridge.sqlite"
    bridge_db = f"sqlite:///{bridge_file.as_posix()}"
    stack = golden.stack(bridge_file)
    box = Sandbox(
        stack,
        bridge_db,
        SalesClient(stack.url("sales"), transport=stack.transport("sales")),
        ScmClient(stack.url("scm"), transport=stack.transport("scm")),
        ControlClient(stack.url("sales"), transport=stack.transport("sales")),
        ControlClient(stack.url("scm"), transport=stack.transport("scm")),
    )
    box._abandoned = []
    box.runtime.worker.poll_wait = 0.2  # short long-polls: stopping the drainers stays quick
    yield box
    stack.close()
    for app in box._abandoned:
        app.extensions["bridge"].close()


@pytest.fixture
def quiet_sandbox(sandbox: Sandbox) -> Sandbox:
    """The sandbox with the async drainers stopped: a test applies feed changes itself, step by step."""
    sandbox.runtime.worker.stop()
    return sandbox
