"""``sandbox chaos``: run fault mixes against a stack and count what the sync lost, duplicated or let diverge.

Two modes, each bounded in count and time:

* **live**: ``--writes`` customer writes alternating sides (SCM, then Sales, ...): creates, renames and
  deletes of customers. Before each write the *other* side gets at most one injected fault for the bridge's
  write (``--before`` percent fail before the write, ``--after`` percent after it, ``when: after``, and
  ``--drop`` percent drop the connection). A write the caller saw succeed is *acknowledged*; its effect must
  be on both sides. A write the caller saw fail must have left no change on either side.
* **async**: the customers map switched to async mode, ``--records`` customers created (and some renamed) in
  SCM while Sales answers ``--errors`` percent of the bridge's writes with a 5xx and ``--throttle`` percent
  with a 429; with ``--stack process`` the stack is killed (``kill -9``) and restarted ``--restarts`` times,
  the last time after the writes. Then faults stop and the command waits until every acknowledged record is in
  Sales as written: that wait is the **drain time** (after the last restart, when there was one).

Both print attempted, acknowledged, failed, lost (acknowledged, missing on a side), duplicated (more than one
row for one key on a side), divergent (a side holds something other than what the acknowledged writes say,
including a row left by a failed write) and the drain time; ``--json FILE`` writes the same. The exit code
is 1 when anything was lost, duplicated or divergent.

Stacks: ``--stack running`` (the one at the URLs given, by default ``sandbox up``'s ports; its faults are
cleared), ``--stack in-process`` (a fresh in-memory stack in this process) or ``--stack process`` (``sandbox
up`` in a child process on a temporary data folder, which it can kill and restart).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx

from leadtocash.clients import Clients, service_origin
from leadtocash.stack import DEFAULT_PORTS, Stack, StackConfig, build_stack
from sandbox.clients import ServiceError
from sandbox.wellknown import DEFAULT_COMPANY, INTEGRATION_IDENTITY

MAP_ID = "customers-accounts"
#: async writes are planned in chunks of this many records (see run_async)
CHUNK = 500
STATUSES_5XX = (500, 502, 503)
Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class ChaosConfig:
    """What one ``sandbox chaos`` run does (percentages as fractions 0..1)."""

    writes: int = 200
    before: float = 0.2
    after: float = 0.1
    drop: float = 0.05
    records: int = 1000
    errors: float = 0.1
    throttle: float = 0.05
    restarts: int = 0
    seed: int = 1
    max_seconds: float = 600.0
    drain_timeout: float = 600.0
    settle_seconds: float = 15.0
    threads: int = 4
    #: the Retry-After (seconds) of the async 429s (5: the faults' default, a throttled Dataverse's order of size)
    retry_after: int = 5


@dataclass
class ChaosReport:
    """The figures of one mode's run."""

    mode: str
    attempted: int = 0
    acknowledged: int = 0
    failed: int = 0
    lost: int = 0
    duplicated: int = 0
    divergent: int = 0
    drain_seconds: float | None = None
    seconds: float = 0.0
    restarts: int = 0
    #: async with restarts: acknowledged records not yet in Sales as written when the last kill came
    backlog: int | None = None
    #: async with restarts: seconds from the last kill until the stack was ready again (the drain follows)
    restart_seconds: float | None = None
    faults: dict[str, int] = field(default_factory=dict)
    #: up to 20 records that are lost, duplicated or divergent, each saying what each side holds
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.divergent)


# ---- the stack to run against ------------------------------------------------------------------------------
class ChaosStack:
    """The stack a run drives: clients on it, and (when it started the stack as a process) kill and restart."""

    can_restart = False

    def clients(self) -> Clients:
        raise NotImplementedError

    def restart(self) -> None:
        raise click.UsageError("--restarts needs --stack process (a stack this command started itself)")

    def close(self) -> None:
        """Stop what this object started."""


class RunningStack(ChaosStack):
    """A stack someone else runs (``sandbox up``), at these URLs."""

    def __init__(self, urls: dict[str, str]) -> None:
        self._clients = Clients.connect({name: service_origin(url, name) for name, url in urls.items()})

    def clients(self) -> Clients:
        return self._clients

    def close(self) -> None:
        self._clients.close()


class InProcessStack(ChaosStack):
    """A stack in this process: a fresh in-memory one, or ``stack`` (which it then closes too)."""

    def __init__(self, seed: int = 1, stack: Stack | None = None) -> None:
        self.stack = stack if stack is not None else build_stack(StackConfig(memory=True, seed=seed))
        self._stack = self.stack
        self._clients = self._stack.clients()

    def clients(self) -> Clients:
        return self._clients

    def close(self) -> None:
        self._clients.close()
        self._stack.close()


class ProcessStack(ChaosStack):
    """``sandbox up`` in a child process of its own (ports chosen by the system, data in ``data_dir``), killed
    with SIGKILL and started again on the same data by :meth:`restart`."""

    can_restart = True

    def __init__(self, data_dir: Path, say: Say, ready_timeout: float = 300.0) -> None:
        self.data_dir = data_dir
        self.say = say
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[str] | None = None
        self._clients: Clients | None = None
        self.ready_at = 0.0
        self.start()

    def start(self) -> None:
        ports = ["--sales-port", "0", "--scm-port", "0", "--bridge-port", "0"]
        command = [sys.executable, "-m", "leadtocash.cli", "up", *ports, "--data-dir", str(self.data_dir)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump(stream: Any) -> None:  # keeps reading, so a chatty stack never blocks on a full pipe
            for line in stream:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, args=(self.process.stdout,), daemon=True).start()
        urls: dict[str, str] = {}
        deadline = time.monotonic() + self.ready_timeout
        seen: list[str] = []
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self._kill()
                raise click.ClickException("the stack did not start: " + "".join(seen[-5:]).strip())
            seen.append(line)
            if line.startswith("ready"):
                break
            parts = line.split()
            if len(parts) == 2 and parts[0] in ("sales", "scm", "bridge"):
                urls[parts[0]] = service_origin(parts[1], parts[0])
        if self._clients is not None:
            self._clients.close()
        self._clients = Clients.connect(urls)
        self.ready_at = time.monotonic()

    def clients(self) -> Clients:
        assert self._clients is not None
        return self._clients

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def restart(self) -> None:
        self.say("kill -9 of the stack, then a restart on the same data")
        self._kill()
        self.start()

    def close(self) -> None:
        if self._clients is not None:
            self._clients.close()
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._kill()


# ---- reading both sides ------------------------------------------------------------------------------------
def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Sides:
    """Both sides' customers whose account numbers start with one prefix (company usmf)."""

    def __init__(self, clients: Clients, prefix: str) -> None:
        self.clients = clients
        self.prefix = prefix
        self._company: str | None = None
        self._group: str | None = None

    @property
    def company(self) -> str:
        if self._company is None:
            rows = self.clients.sales.query(
                "cdm_companies", select=["cdm_companyid"], filter=f"cdm_companycode eq {_literal(DEFAULT_COMPANY)}"
            )
            self._company = rows[0]["cdm_companyid"]
        return self._company

    @property
    def group(self) -> str:
        if self._group is None:
            rows = self.clients.sales.query(
                "msdyn_customergroups", select=["msdyn_customergroupid"], filter="msdyn_groupid eq '10'"
            )
            self._group = rows[0]["msdyn_customergroupid"]
        return self._group

    def scm(self) -> dict[str, list[str]]:
        rows = self.clients.scm.query(
            "CustomersV3",
            select=["CustomerAccount", "OrganizationName"],
            # F&O has no startswith(): a '*' wildcard in an eq literal (docs/reference/fno-odata.md)
            filter=f"CustomerAccount eq {_literal(self.prefix + '*')} and dataAreaId eq {_literal(DEFAULT_COMPANY)}",
            cross_company=True,
        )
        out: dict[str, list[str]] = {}
        for row in rows:
            out.setdefault(row["CustomerAccount"], []).append(row["OrganizationName"])
        return out

    def sales(self) -> dict[str, list[str]]:
        rows = self.clients.sales.query(
            "accounts",
            select=["accountnumber", "name"],
            filter=f"startswith(accountnumber, {_literal(self.prefix)}) and _msdyn_company_value eq {self.company}",
        )
        out: dict[str, list[str]] = {}
        for row in rows:
            out.setdefault(row["accountnumber"], []).append(row["name"])
        return out

    def sales_count(self) -> int:
        return self.clients.sales.count(
            "accounts", f"startswith(accountnumber, {_literal(self.prefix)}) and _msdyn_company_value eq {self.company}"
        )

    def sales_id(self, number: str) -> str | None:
        rows = self.clients.sales.query(
            "accounts",
            select=["accountid"],
            filter=f"accountnumber eq {_literal(number)} and _msdyn_company_value eq {self.company}",
        )
        return rows[0]["accountid"] if rows else None


def compare(expected: dict[str, str | None], sides: Sides, report: ChaosReport) -> None:
    """Count lost, duplicated and divergent records: ``expected`` is each touched record's name after its
    acknowledged writes (None: it must not exist)."""
    scm, sales = sides.scm(), sides.sales()
    report.lost = report.duplicated = report.divergent = 0
    report.examples = []
    for number in sorted(set(expected) | set(scm) | set(sales)):
        want = expected.get(number)
        on_scm, on_sales = scm.get(number, []), sales.get(number, [])
        problem = None
        if len(on_scm) > 1 or len(on_sales) > 1:
            report.duplicated += 1
            problem = "duplicated"
        elif want is not None and (not on_scm or not on_sales):
            report.lost += 1
            problem = "lost"
        elif (want is None and (on_scm or on_sales)) or (want is not None and (on_scm != [want] or on_sales != [want])):
            report.divergent += 1
            problem = "divergent"
        if problem and len(report.examples) < 20:
            report.examples.append(
                {"account": number, "problem": problem, "expected": want, "scm": on_scm, "sales": on_sales}
            )


def _map_mode(clients: Clients) -> tuple[str, str]:
    assert clients.bridge is not None
    answer = clients.bridge.get(f"/api/maps/{MAP_ID}")
    answer.raise_for_status()
    body = answer.json()
    return str(body.get("state")), str(body.get("mode"))


def _set_mode(clients: Clients, mode: str) -> None:
    assert clients.bridge is not None
    clients.bridge.post(f"/api/maps/{MAP_ID}/run", json={"initial_sync": False, "mode": mode}).raise_for_status()


def _clear_faults(clients: Clients) -> None:
    for control in clients.control.values():
        control.clear_faults()


# ---- live --------------------------------------------------------------------------------------------------
def run_live(stack: ChaosStack, config: ChaosConfig, say: Say = _quiet) -> ChaosReport:
    """Live writes alternating sides under faults before, after and dropping (see the module docstring)."""
    clients = stack.clients()
    state, mode = _map_mode(clients)
    if state != "Running":
        raise click.ClickException(f"map {MAP_ID} is {state}: live chaos needs it Running (`sandbox maps run`)")
    if mode != "live":
        _set_mode(clients, "live")
    rng = random.Random(config.seed)
    prefix = f"CHL{uuid.uuid4().hex[:6].upper()}-"
    sides = Sides(clients, prefix)
    report = ChaosReport("live")
    expected: dict[str, str | None] = {}
    started = time.monotonic()
    _clear_faults(clients)
    for index in range(config.writes):
        if time.monotonic() - started > config.max_seconds:
            say(f"time is up after {index} writes")
            break
        source = "scm" if index % 2 == 0 else "sales"
        target = "sales" if source == "scm" else "scm"
        present = [n for n, name in expected.items() if name is not None]
        roll = rng.random()
        if present and roll < 0.1:
            operation, number = "delete", rng.choice(present)
        elif present and roll < 0.4:
            operation, number = "update", rng.choice(present)
        else:
            operation, number = "create", f"{prefix}{index:05d}"
        name = f"Chaos {index} {rng.choice(['Ltd', 'Inc', 'GmbH', 'SA'])}"
        kind = _live_fault(clients, target, rng, config)
        report.faults[kind] = report.faults.get(kind, 0) + 1
        report.attempted += 1
        try:
            _live_write(clients, sides, source, operation, number, name)
        except (ServiceError, MissingRecord):
            report.failed += 1
        else:
            report.acknowledged += 1
            expected[number] = None if operation == "delete" else name
        finally:
            clients.control[target].clear_faults()
        if (index + 1) % 50 == 0:
            say(f"{index + 1} writes, {report.acknowledged} acknowledged")
    # A write whose outcome stayed unknown is undone in the background: give the bridge a moment to finish.
    deadline = time.monotonic() + config.settle_seconds
    while True:
        compare(expected, sides, report)
        if report.ok or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    report.seconds = time.monotonic() - started
    return report


def _live_fault(clients: Clients, target: str, rng: random.Random, config: ChaosConfig) -> str:
    """Arm at most one fault for the bridge's next write to ``target``; the kind armed."""
    roll = rng.random()
    status = rng.choice(STATUSES_5XX)
    control = clients.control[target]
    if roll < config.before:
        control.fail_bridge_writes(status, times=1)
        return "before"
    if roll < config.before + config.after:
        control.fail_bridge_writes(status, times=1, when="after")
        return "after"
    if roll < config.before + config.after + config.drop:
        when = rng.choice(["before", "after"])
        control.fail_bridge_writes(status, times=1, drop=True, when=when)
        return f"drop-{when}"
    return "none"


class MissingRecord(Exception):
    """A live update or delete from Sales of a record Sales does not hold."""


def _live_write(clients: Clients, sides: Sides, source: str, operation: str, number: str, name: str) -> None:
    key = {"dataAreaId": DEFAULT_COMPANY, "CustomerAccount": number}
    if source == "scm":
        if operation == "create":
            clients.scm.create(
                "CustomersV3",
                {**key, "OrganizationName": name, "CustomerGroupId": "10", "SalesCurrencyCode": "USD"},
            )
        elif operation == "update":
            clients.scm.update("CustomersV3", key, {"OrganizationName": name})
        else:
            clients.scm.delete("CustomersV3", key)
        return
    if operation == "create":
        clients.sales.create(
            "accounts",
            {
                "name": name,
                "accountnumber": number,
                "customertypecode": 3,
                "msdyn_company@odata.bind": f"/cdm_companies({sides.company})",
                "msdyn_customergroupid@odata.bind": f"/msdyn_customergroups({sides.group})",
            },
        )
        return
    account = sides.sales_id(number)
    if account is None:  # compare() reports the record; the write itself cannot be made
        raise MissingRecord(f"account {number} is not in Sales")
    if operation == "update":
        clients.sales.update("accounts", account, {"name": name})
    else:
        clients.sales.delete("accounts", account)


# ---- async -------------------------------------------------------------------------------------------------
def run_async(stack: ChaosStack, config: ChaosConfig, say: Say = _quiet) -> ChaosReport:
    """SCM customers synced in async mode under 5xx and 429 (and kills), then the drain (module docstring)."""
    if config.restarts and not stack.can_restart:
        stack.restart()  # says why it cannot
    clients = stack.clients()
    state, mode = _map_mode(clients)
    if state != "Running":
        raise click.ClickException(f"map {MAP_ID} is {state}: async chaos needs it Running (`sandbox maps run`)")
    _set_mode(clients, "async")
    rng = random.Random(config.seed)
    prefix = f"CHA{uuid.uuid4().hex[:6].upper()}-"
    report = ChaosReport("async")
    expected: dict[str, str | None] = {}
    restart_at = (
        {config.records * k // config.restarts for k in range(1, config.restarts + 1)} if config.restarts else set()
    )
    # Writes go in chunks (at each restart, and every CHUNK records): renames pick records acknowledged in an
    # earlier chunk, each at most once per chunk, so concurrent writers never race on one record.
    bounds = sorted(restart_at | set(range(CHUNK, config.records, CHUNK)) | {config.records})
    started = time.monotonic()
    _arm_async_faults(stack.clients(), config)
    try:
        first = 0
        for end in bounds:
            plan = _async_plan(rng, prefix, first, end, expected)
            first = end

            def work(item: tuple[int, str, str]) -> tuple[str, str, bool] | None:
                index, number, operation = item
                if time.monotonic() - started > config.max_seconds:
                    return None
                name = f"Async {index}"
                try:
                    _async_write(stack.clients(), operation, number, name)
                except (ServiceError, httpx.TransportError):
                    return number, name, False
                return number, name, True

            with ThreadPoolExecutor(max(1, config.threads)) as pool:
                for result in pool.map(work, plan):
                    if result is None:
                        continue
                    report.attempted += 1
                    number, name, acknowledged = result
                    if acknowledged:
                        report.acknowledged += 1
                        expected[number] = name
                    else:
                        report.failed += 1
            say(f"{end} records written, {report.acknowledged} acknowledged")
            if time.monotonic() - started > config.max_seconds:
                say(f"time is up after {report.attempted} records")
                break
            if end in restart_at and end < config.records:
                stack.restart()
                report.restarts += 1
                _arm_async_faults(stack.clients(), config)
        if config.restarts:
            # the last restart comes after the writes: what it leaves queued is what drains
            waiting = ChaosReport("async")
            compare(expected, Sides(stack.clients(), prefix), waiting)
            report.backlog = waiting.lost + waiting.divergent
            restarting = time.monotonic()
            stack.restart()
            report.restart_seconds = time.monotonic() - restarting
            report.restarts += 1
        _clear_faults(stack.clients())
        drain_started = time.monotonic()
        sides = Sides(stack.clients(), prefix)
        say(f"faults off; waiting for {len(expected)} records to reach Sales")
        present = sum(1 for name in expected.values() if name is not None)
        while True:
            if sides.sales_count() < present:  # a cheap count first: the full comparison reads every row
                if time.monotonic() - drain_started > config.drain_timeout:
                    compare(expected, sides, report)
                    say(f"not drained after {config.drain_timeout:.0f} s")
                    break
                time.sleep(0.2)
                continue
            checked_at = time.monotonic()  # drained as of this read; the full comparison takes a while itself
            compare(expected, sides, report)
            if report.ok:
                report.drain_seconds = checked_at - drain_started
                break
            if time.monotonic() - drain_started > config.drain_timeout:
                say(f"not drained after {config.drain_timeout:.0f} s")
                break
            time.sleep(0.2)
    finally:
        with contextlib.suppress(Exception):
            _clear_faults(stack.clients())
            _set_mode(stack.clients(), mode)
    report.seconds = time.monotonic() - started
    return report


def _async_plan(
    rng: random.Random, prefix: str, first: int, end: int, expected: dict[str, str | None]
) -> list[tuple[int, str, str]]:
    """The writes of records ``first`` to ``end``: creates, and a fifth renames of earlier records."""
    known = [n for n, v in expected.items() if v is not None]
    taken: set[str] = set()
    plan = []
    for index in range(first, end):
        number = rng.choice(known) if known and rng.random() < 0.2 else None
        if number is None or number in taken:
            plan.append((index, f"{prefix}{index:06d}", "create"))
        else:
            taken.add(number)
            plan.append((index, number, "update"))
    return plan


def _arm_async_faults(clients: Clients, config: ChaosConfig) -> None:
    """Sales answers the bridge's writes with 429 (``throttle``) and 5xx (``errors``), at random."""
    control = clients.control["sales"]
    control.clear_faults()
    writes = ["POST", "PATCH", "PUT", "DELETE"]
    if config.throttle:
        control.add_fault(
            match_method=writes,
            match_identity=INTEGRATION_IDENTITY,
            status=429,
            retry_after=config.retry_after,
            probability=config.throttle,
            times=None,
        )
    if config.errors:
        # Faults are tried in order, each seeing only the writes the ones before let through: half the 5xx
        # share as 500, half as 503, of all writes.
        share = min(1.0, config.errors / max(1e-9, 1.0 - config.throttle))
        first = share / 2
        second = min(1.0, first / max(1e-9, 1.0 - first))
        for status, probability in ((500, first), (503, second)):
            control.add_fault(
                match_method=writes,
                match_identity=INTEGRATION_IDENTITY,
                status=status,
                probability=probability,
                times=None,
            )


def _async_write(clients: Clients, operation: str, number: str, name: str) -> None:
    key = {"dataAreaId": DEFAULT_COMPANY, "CustomerAccount": number}
    if operation == "create":
        clients.scm.create(
            "CustomersV3", {**key, "OrganizationName": name, "CustomerGroupId": "10", "SalesCurrencyCode": "USD"}
        )
    else:
        clients.scm.update("CustomersV3", key, {"OrganizationName": name})


# ---- the command -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def open_stack(kind: str, urls: dict[str, str], seed: int, say: Say) -> Iterator[ChaosStack]:
    """The stack ``--stack`` names, closed (or stopped) when the block ends."""
    if kind == "in-process":
        chosen: ChaosStack = InProcessStack(seed)
    elif kind == "process":
        folder = tempfile.mkdtemp(prefix="sandbox-chaos-")
        say(f"starting `sandbox up` on {folder}")
        chosen = ProcessStack(Path(folder), say)
    else:
        chosen = RunningStack(urls)
    try:
        yield chosen
    finally:
        chosen.close()


def run_chaos(stack: ChaosStack, modes: list[str], config: ChaosConfig, say: Say = _quiet) -> list[ChaosReport]:
    """Each mode in turn on ``stack``."""
    reports = []
    for mode in modes:
        say(f"{mode} mode")
        reports.append(run_live(stack, config, say) if mode == "live" else run_async(stack, config, say))
    return reports


COLUMNS = ("attempted", "acknowledged", "failed", "lost", "duplicated", "divergent")


def print_reports(reports: list[ChaosReport], echo: Say = click.echo) -> None:
    echo(f"{'mode':<6} " + " ".join(f"{c:>12}" for c in COLUMNS) + f" {'drain':>9} {'seconds':>8}")
    for r in reports:
        drain = "-" if r.drain_seconds is None else f"{r.drain_seconds:.1f} s"
        values = " ".join(f"{getattr(r, c):>12}" for c in COLUMNS)
        echo(f"{r.mode:<6} {values} {drain:>9} {r.seconds:>8.1f}")
        if r.restart_seconds is not None:
            echo(
                f"  {r.restarts} kill -9; the last left {r.backlog} record(s) queued, the stack was ready "
                f"{r.restart_seconds:.1f} s after it, and the queue drained {drain} after that"
            )
        for example in r.examples[:5]:
            echo(
                f"  {example['problem']}: {example['account']} expected {example['expected']!r}, "
                f"SCM {example['scm']!r}, Sales {example['sales']!r}"
            )
    echo("ok" if all(r.ok for r in reports) else "LOST, DUPLICATED OR DIVERGENT")


def _percent(value: float) -> float:
    if not 0 <= value <= 100:
        raise click.BadParameter("a percentage from 0 to 100")
    return value / 100


@click.command("chaos")
@click.option("--mode", type=click.Choice(["live", "async", "both"]), default="both", show_default=True)
@click.option(
    "--stack",
    "stack_kind",
    type=click.Choice(["running", "in-process", "process"]),
    default="running",
    show_default=True,
    help="The stack at the URLs (its faults are cleared), a fresh one in this process, or `sandbox up` in a "
    "child process this command may kill and restart.",
)
@click.option("--sales-url", default=f"http://127.0.0.1:{DEFAULT_PORTS['sales']}", show_default=True)
@click.option("--scm-url", default=f"http://127.0.0.1:{DEFAULT_PORTS['scm']}", show_default=True)
@click.option("--bridge-url", default=f"http://127.0.0.1:{DEFAULT_PORTS['bridge']}", show_default=True)
@click.option("--writes", default=200, show_default=True, type=click.IntRange(1, 100_000), help="Live writes.")
@click.option("--before", default=20.0, show_default=True, help="Percent of live writes failing before the write.")
@click.option("--after", default=10.0, show_default=True, help="Percent failing after it (the write happened).")
@click.option("--drop", default=5.0, show_default=True, help="Percent whose connection drops.")
@click.option("--records", default=1000, show_default=True, type=click.IntRange(1, 1_000_000), help="Async records.")
@click.option("--errors", default=10.0, show_default=True, help="Percent of async writes answered 5xx.")
@click.option("--throttle", default=5.0, show_default=True, help="Percent of async writes answered 429.")
@click.option("--retry-after", default=5, show_default=True, type=click.IntRange(0, 120), help="Of the 429s.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="Async writer threads.")
@click.option("--restarts", default=0, show_default=True, type=click.IntRange(0, 20), help="kill -9 (async).")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--max-seconds", default=600.0, show_default=True, help="Stop writing after this long (per mode).")
@click.option("--drain-timeout", default=600.0, show_default=True, help="Give up waiting for the drain after this.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the figures as JSON.")
def chaos_command(
    mode: str,
    stack_kind: str,
    sales_url: str,
    scm_url: str,
    bridge_url: str,
    writes: int,
    before: float,
    after: float,
    drop: float,
    records: int,
    errors: float,
    throttle: float,
    retry_after: int,
    threads: int,
    restarts: int,
    seed: int,
    max_seconds: float,
    drain_timeout: float,
    json_path: str | None,
) -> None:
    """Run fault mixes against a stack and count attempted, acknowledged, failed, lost, duplicated and
    divergent writes, and the drain time; exit 1 when anything was lost, duplicated or divergent."""
    before, after, drop = _percent(before), _percent(after), _percent(drop)
    if before + after + drop > 1:
        raise click.BadParameter("--before, --after and --drop add up to more than 100")
    config = ChaosConfig(
        writes=writes,
        before=before,
        after=after,
        drop=drop,
        records=records,
        errors=_percent(errors),
        throttle=_percent(throttle),
        restarts=restarts,
        threads=threads,
        retry_after=retry_after,
        seed=seed,
        max_seconds=max_seconds,
        drain_timeout=drain_timeout,
    )
    if restarts and stack_kind != "process":
        raise click.UsageError("--restarts needs --stack process (a stack this command started itself)")
    started = time.monotonic()

    def say(text: str) -> None:
        click.echo(f"  [{time.monotonic() - started:6.0f}s] {text}", err=True)

    modes = ["live", "async"] if mode == "both" else [mode]
    urls = {"sales": sales_url, "scm": scm_url, "bridge": bridge_url}
    try:
        with open_stack(stack_kind, urls, seed, say) as stack:
            reports = run_chaos(stack, modes, config, say)
    except httpx.TransportError as exc:
        raise click.ClickException(
            f"cannot reach the stack ({exc}); start it with `sandbox up`, pass the URLs, or use --stack in-process"
        ) from None
    print_reports(reports)
    if json_path:
        Path(json_path).write_text(
            json.dumps(
                {"ok": all(r.ok for r in reports), "config": asdict(config), "modes": [asdict(r) for r in reports]},
                indent=2,
            )
            + "\n"
        )
    sys.exit(0 if all(r.ok for r in reports) else 1)
