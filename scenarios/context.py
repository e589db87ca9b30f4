"""What a scenario works with: clients for both services and the bridge, named steps, sync checks."""

from __future__ import annotations

import contextlib
import random
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from faker import Faker

from sandbox.clients import ControlClient, SalesClient, ScmClient, ServiceError

T = TypeVar("T")


class Mismatch(AssertionError):
    """Both sides disagree (or a record is missing on one); carries the records for the report."""

    def __init__(self, message: str, *, sales: Any = None, scm: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.sales = sales
        self.scm = scm


@dataclass
class StepResult:
    name: str
    passed: bool
    seconds: float
    error: str | None = None
    sales: Any = None
    scm: Any = None
    sync_seconds: float | None = None


@dataclass
class JourneyEntry:
    """One document of the journey, as the demo report prints it."""

    step: str
    side: str
    document: str
    number: str
    status: str = ""
    amount: float | None = None
    #: the sales tax included in ``amount``, where the document states it
    tax: float | None = None


#: Opens a context on a fresh, throwaway stack of its own whose bridge also loads the table maps in the given
#: folders, and closes that stack when the block ends. Whoever runs the scenarios supplies it: scenarios never
#: build stacks themselves (they sit below the composition root that does).
IsolatedStack = Callable[[list[Path]], AbstractContextManager["ScenarioContext"]]


@dataclass
class ScenarioContext:
    """Handed to each scenario. ``sales``/``scm`` are typed clients; ``.http`` on them is a plain httpx client
    on the service root. ``bridge`` is an httpx client on the bridge (``/api/maps``...). ``isolated_stack``
    (given by the runner) starts a stack of the scenario's own: see :meth:`isolated`."""

    sales: SalesClient
    scm: ScmClient
    bridge: httpx.Client | None
    control: dict[str, ControlClient]
    fake: Faker
    rng: random.Random
    steps: list[StepResult] = field(default_factory=list)
    journey: list[JourneyEntry] = field(default_factory=list)
    current_sync: float | None = None
    timeout: float = 10.0
    isolated_stack: IsolatedStack | None = None

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[ScenarioContext]:
        """A named step: timed, recorded, and on failure the difference (with both records) is kept."""
        started = time.perf_counter()
        self.current_sync = None
        try:
            yield self
        except Mismatch as exc:
            self.steps.append(StepResult(name, False, time.perf_counter() - started, exc.message, exc.sales, exc.scm))
            raise
        except ServiceError as exc:
            self.steps.append(
                StepResult(
                    name,
                    False,
                    time.perf_counter() - started,
                    f"{exc.status} from {exc.response.request.url}: {exc.message}",
                )
            )
            raise
        except Exception as exc:
            self.steps.append(
                StepResult(
                    name,
                    False,
                    time.perf_counter() - started,
                    f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}",
                )
            )
            raise
        else:
            self.steps.append(StepResult(name, True, time.perf_counter() - started, sync_seconds=self.current_sync))

    @contextlib.contextmanager
    def isolated(self, maps_dirs: Sequence[Path] = ()) -> Iterator[ScenarioContext]:
        """A context on a throwaway stack of its own whose bridge also loads the maps in ``maps_dirs`` (so a
        scenario never changes the maps of shared servers). It records into this context's steps and journey and
        draws from its ``fake`` and ``rng``: one report, one seeded sequence. The stack closes with the block."""
        if self.isolated_stack is None:
            raise Mismatch("this run cannot start a stack of the scenario's own (the context has no isolated_stack)")
        with self.isolated_stack(list(maps_dirs)) as inner:
            inner.steps, inner.journey, inner.rng, inner.fake = self.steps, self.journey, self.rng, self.fake
            yield inner

    # ---- waiting and comparing ----------------------------------------------------------------------------
    def wait_for(self, probe: Callable[[], T | None], message: str, timeout: float | None = None) -> T:
        """Poll ``probe`` until it returns something truthy; the time it took counts as this step's sync time."""
        started = time.perf_counter()
        deadline = started + (timeout or self.timeout)
        while True:
            value = probe()
            if value:
                elapsed = time.perf_counter() - started
                self.current_sync = (self.current_sync or 0.0) + elapsed
                return value
            if time.perf_counter() > deadline:
                raise Mismatch(f"timed out waiting for {message}")
            time.sleep(0.02)

    def sales_row(self, entity_set: str, filter: str, **options: Any) -> dict[str, Any] | None:
        rows = self.sales.query(entity_set, filter=filter, top=1, **options)
        return rows[0] if rows else None

    def scm_row(self, entity_set: str, filter: str, **options: Any) -> dict[str, Any] | None:
        rows = self.scm.query(entity_set, filter=filter, top=1, cross_company=True, **options)
        return rows[0] if rows else None

    def synced(
        self, *, sales: tuple[str, str], scm: tuple[str, str], fields: dict[str, str], timeout: float | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Wait until the Sales row and the SCM row exist and agree on ``fields`` (SCM field -> Sales column);
        return both. Raises :class:`Mismatch` with both records when they never agree."""
        last: dict[str, Any] = {}

        def probe() -> tuple[dict[str, Any], dict[str, Any]] | None:
            sales_row = self.sales_row(*sales)
            scm_row = self.scm_row(*scm)
            last.update(sales=sales_row, scm=scm_row)
            if sales_row is None or scm_row is None:
                return None
            if all(_same(scm_row.get(f), sales_row.get(c)) for f, c in fields.items()):
                return sales_row, scm_row
            return None

        try:
            return self.wait_for(probe, f"{sales[0]} and {scm[0]} to agree", timeout)
        except Mismatch:
            sales_row, scm_row = last.get("sales"), last.get("scm")
            if sales_row is None or scm_row is None:
                missing = "Sales" if sales_row is None else "SCM"
                raise Mismatch(
                    f"missing in {missing}: {sales[0]} [{sales[1]}] / {scm[0]} [{scm[1]}]", sales=sales_row, scm=scm_row
                ) from None
            differing = {
                f: (scm_row.get(f), sales_row.get(c))
                for f, c in fields.items()
                if not _same(scm_row.get(f), sales_row.get(c))
            }
            raise Mismatch(f"differing fields (SCM vs Sales): {differing}", sales=sales_row, scm=scm_row) from None

    def check(self, condition: bool, message: str, *, sales: Any = None, scm: Any = None) -> None:
        """Fail the step with ``message`` (and the records) unless ``condition`` holds."""
        if not condition:
            raise Mismatch(message, sales=sales, scm=scm)

    def found(self, value: T | None, message: str, *, sales: Any = None, scm: Any = None) -> T:
        """``value`` when it is there (not None); otherwise the step fails with ``message``, as :meth:`check`."""
        if value is None:
            raise Mismatch(message, sales=sales, scm=scm)
        return value

    def bridge_client(self) -> httpx.Client:
        """The client on the bridge's admin API; a run without a bridge fails the step saying so."""
        if self.bridge is None:
            raise Mismatch("this scenario needs the bridge (--bridge-url)")
        return self.bridge

    def expect_error(
        self, call: Callable[[], Any], status: int | None = None, contains: str | None = None
    ) -> ServiceError:
        """Run ``call`` and return the :class:`ServiceError` it must raise."""
        try:
            call()
        except ServiceError as exc:
            if status is not None and exc.status != status:
                raise Mismatch(f"expected status {status}, got {exc.status}: {exc.message}") from None
            if contains is not None and contains.lower() not in exc.message.lower():
                raise Mismatch(f"expected an error mentioning {contains!r}, got: {exc.message}") from None
            return exc
        raise Mismatch("expected the call to fail, but it succeeded")

    def note(
        self, step: str, side: str, document: str, number: Any, status: Any = "", amount: Any = None, tax: Any = None
    ) -> None:
        """Record a document for the journey report (``tax``: the sales tax included in ``amount``)."""
        self.journey.append(
            JourneyEntry(
                step,
                side,
                document,
                str(number),
                str(status),
                float(amount) if amount is not None else None,
                float(tax) if tax is not None else None,
            )
        )

    def map_action(self, map_id: str, action: str, **body: Any) -> dict[str, Any]:
        """Drive a bridge map (run, pause, resume, stop)."""
        response = self.bridge_client().post(f"/api/maps/{map_id}/{action}", json=body)
        if response.status_code >= 400:
            raise Mismatch(f"bridge {action} {map_id} failed: {response.text}")
        return response.json()


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, (int, float)) and isinstance(right, (int, float)) and not isinstance(left, bool):
        return abs(float(left) - float(right)) < 1e-6
    if isinstance(left, str) and isinstance(right, str):
        return left.strip().lower() == right.strip().lower()
    if left in (None, "") and right in (None, ""):
        return True
    return left == right
