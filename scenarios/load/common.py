"""What the user classes share: where the services are, reference data, unique ids, the ``sync`` metric.

Imported by Locust (under gevent) only; the ``sandbox load`` command never imports this module.

Where the services are comes from Locust options or environment variables, so workers on other
machines find them too: ``--sales-url``/``SANDBOX_SALES_URL``, ``--scm-url``/``SANDBOX_SCM_URL``,
``--bridge-url``/``SANDBOX_BRIDGE_URL`` (origins, e.g. ``http://127.0.0.1:5101``). Requests carry tokens of the
well-known development app from the identity service at ``SANDBOX_IDENTITY_URL`` (default ``sandbox up``'s,
``http://127.0.0.1:5100``), when it answers.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import gevent  # type: ignore[import-untyped]  # no type information ships with gevent
from locust import HttpUser, events
from locust.clients import HttpSession
from locust.env import Environment

from sandbox.clients.auth import DEFAULT_IDENTITY_URL, ClientCredentials, TokenError
from sandbox.wellknown import DEFAULT_COMPANY

COMPANY = DEFAULT_COMPANY
SCM_NS = "Microsoft.Dynamics.DataEntities"
CRM_NS = "Microsoft.Dynamics.CRM"
#: seeded usmf customers that are neither on hold nor under a mandatory credit limit
CUSTOMERS = ["US-001", "US-002", "US-003", "US-009", "US-040"]
#: the request type of the propagation-latency samples (shown beside GET/POST in every Locust report)
SYNC = "SYNC"
SYNC_TIMEOUT = float(os.environ.get("SANDBOX_SYNC_TIMEOUT", "15"))
JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument(
        "--sales-url",
        type=str,
        env_var="SANDBOX_SALES_URL",
        default="http://127.0.0.1:5101",
        help="Origin of mock Sales",
    )
    parser.add_argument(
        "--scm-url", type=str, env_var="SANDBOX_SCM_URL", default="http://127.0.0.1:5102", help="Origin of mock SCM"
    )
    parser.add_argument(
        "--bridge-url",
        type=str,
        env_var="SANDBOX_BRIDGE_URL",
        default="http://127.0.0.1:5103",
        help="Origin of the bridge",
    )


def describe_failure(response: Any) -> str:
    """Why a request failed, from the service's own error body: ``503 [0x80040216] The database is busy; ...``
    (status, error code, message; both services and the bridge answer ``{"error": {"code", "message"}}``)."""
    code = message = ""
    try:
        error = response.json().get("error") or {}
        code, message = str(error.get("code") or ""), str(error.get("message") or "")
    except Exception:  # noqa: BLE001 - not JSON: the start of the text says enough
        message = (getattr(response, "text", "") or "")[:200]
    message = " ".join(message.split())[:300]
    return f"{response.status_code}" + (f" [{code}]" if code else "") + (f" {message}" if message else "")


class DetailedSession(HttpSession):
    """Locust's session, reporting a failed answer by its status, error code and message (Locust alone reports
    ``503 Server Error: SERVICE UNAVAILABLE for url``, which says nothing about why)."""

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        name: str | None = None,
        catch_response: bool = False,
        context: Any = None,
        **kwargs: Any,
    ) -> Any:
        if catch_response:
            return super().request(method, url, name, catch_response, context or {}, **kwargs)
        with super().request(method, url, name, True, context or {}, **kwargs) as response:
            if response.status_code >= 400:
                response.failure(describe_failure(response))
        return response


class SandboxTokens:
    """A ``requests`` auth: the well-known development app's bearer token for each service origin (a stack that
    checks tokens, ``sandbox up``'s default); without an identity service to answer, requests go without one."""

    def __init__(self, identity_url: str) -> None:
        self.credentials = ClientCredentials.for_identity(identity_url)
        self.available = True

    def __call__(self, request: Any) -> Any:
        if self.available:
            scheme, _, rest = str(request.url).partition("://")
            origin = f"{scheme}://{rest.split('/', 1)[0]}"
            try:
                request.headers["Authorization"] = f"Bearer {self.credentials.token(origin)}"
            except TokenError:
                # no identity service, or one that does not know this service: send without tokens from now on
                self.available = False
        return request


class SandboxUser(HttpUser):
    """An ``HttpUser`` whose failures say why (see :class:`DetailedSession`)."""

    abstract = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = DetailedSession(
            base_url=self.host,
            request_event=self.environment.events.request,
            user=self,
            pool_manager=self.pool_manager,
        )
        self.client.trust_env = False
        self.client.auth = SandboxTokens(os.environ.get("SANDBOX_IDENTITY_URL") or DEFAULT_IDENTITY_URL)


def urls(environment: Environment) -> dict[str, str]:
    options = environment.parsed_options

    def pick(name: str, env: str, default: str) -> str:
        value = getattr(options, name, None) if options is not None else None
        return (value or os.environ.get(env) or default).rstrip("/")

    return {
        "sales": pick("sales_url", "SANDBOX_SALES_URL", "http://127.0.0.1:5101") + "/api/data/v9.2",
        "scm": pick("scm_url", "SANDBOX_SCM_URL", "http://127.0.0.1:5102") + "/data",
        "bridge": pick("bridge_url", "SANDBOX_BRIDGE_URL", "http://127.0.0.1:5103"),
    }


def unique(prefix: str, length: int = 10) -> str:
    """A key no other user, worker or run picks (fits F&O's 20-character account numbers)."""
    return f"{prefix}{uuid.uuid4().hex[:length].upper()}"


def quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def fire_sync(environment: Environment, name: str, started: float, error: Exception | None = None) -> None:
    """Report one propagation (written on one side -> visible on the other) as a ``SYNC`` sample in ms."""
    environment.events.request.fire(
        request_type=SYNC,
        name=name,
        response_time=(time.perf_counter() - started) * 1000.0,
        response_length=0,
        exception=error,
        context={},
    )


def poll_until(check: Any, timeout: float = SYNC_TIMEOUT, interval: float = 0.05) -> Any:
    """Call ``check`` until it returns something truthy (cooperatively, under gevent) or ``timeout`` passes."""
    deadline = time.perf_counter() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.perf_counter() >= deadline:
            return None
        gevent.sleep(interval)


class Reference:
    """Ids of seeded Sales rows the salespeople need (company, price list, products, accounts), looked up once."""

    _cache: dict[str, dict[str, Any]] = {}

    @classmethod
    def get(cls, client: Any, sales: str) -> dict[str, Any] | None:
        if sales in cls._cache:
            return cls._cache[sales]

        def first(path: str, params: dict[str, str]) -> dict[str, Any] | None:
            response = client.get(f"{sales}/{path}", params=params, headers=JSON_HEADERS, name=f"[setup] {path}")
            rows = response.json().get("value", []) if response.ok else []
            return rows[0] if rows else None

        company = first("cdm_companies", {"$filter": f"cdm_companycode eq '{COMPANY}'"})
        if company is None:
            return None
        company_id = company["cdm_companyid"]
        product = first(
            "products", {"$filter": f"msdyn_productnumber eq 'D0001' and _msdyn_company_value eq {company_id}"}
        )
        price_list = first("pricelevels", {"$filter": "name ne null", "$select": "pricelevelid"})
        currency = first("transactioncurrencies", {"$filter": "isocurrencycode eq 'USD'"})
        accounts = client.get(
            f"{sales}/accounts",
            headers=JSON_HEADERS,
            name="[setup] accounts",
            params={
                "$select": "accountid,accountnumber",
                "$filter": f"_msdyn_company_value eq {company_id} and "
                + "("
                + " or ".join(f"accountnumber eq '{number}'" for number in CUSTOMERS)
                + ")",
            },
        )
        account_ids = [row["accountid"] for row in accounts.json().get("value", [])] if accounts.ok else []
        if not (product and price_list and currency and account_ids):
            return None
        cls._cache[sales] = {
            "company": company_id,
            "product": product["productid"],
            "uom": product.get("_defaultuomid_value"),
            "price_list": price_list["pricelevelid"],
            "currency": currency["transactioncurrencyid"],
            "accounts": account_ids,
        }
        return cls._cache[sales]
