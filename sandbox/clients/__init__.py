"""Typed HTTP clients for the two mock services and their control planes.

Everything that talks to a service (the bridge, scenario scripts, load tests, the CLI) goes through these
classes, so the wire conventions live in one place: OData headers, key formatting, ``@odata.nextLink``
paging, ``multipart/mixed`` ``$batch`` and the two error shapes. The transport is injectable:
``httpx.WSGITransport(app=flask_app)`` runs a service in-process, the default transport speaks real HTTP,
``httpx.MockTransport`` lets tests pin the exact requests.

The clients never retry. Retrying belongs to the caller (the bridge owns its policy); a failed request
raises :class:`ServiceError`, which carries the parsed error and the ``Retry-After`` hint.

Each client owns one :class:`httpx.Client` and keeps no per-request state on itself, so one instance can
be shared by threads the way an ``httpx.Client`` can.

One module per concern: ``errors`` (:class:`ServiceError`), ``encoding`` (identity header, URL
percent-encoding, JSON bodies), ``keys`` (key segments; literals come from :mod:`sandbox.odata.literals`),
``batch`` (:class:`BatchOp`, :class:`BatchResult`), ``base`` (:class:`ODataClient`), ``sales``,
``scm`` and ``control`` (the three clients). Import the public names from this package.
"""

from __future__ import annotations

from sandbox.clients.auth import ClientCredentials, TokenError
from sandbox.clients.base import ODataClient
from sandbox.clients.batch import BatchOp, BatchResult
from sandbox.clients.control import ControlClient
from sandbox.clients.encoding import IDENTITY_HEADER
from sandbox.clients.errors import ServiceError
from sandbox.clients.keys import format_key, format_literal, parse_entity_id
from sandbox.clients.sales import DeltaResult, SalesClient
from sandbox.clients.scm import ScmClient

__all__ = [
    "ClientCredentials",
    "TokenError",
    "BatchOp",
    "BatchResult",
    "ControlClient",
    "DeltaResult",
    "IDENTITY_HEADER",
    "ODataClient",
    "SalesClient",
    "ScmClient",
    "ServiceError",
    "format_key",
    "format_literal",
    "parse_entity_id",
]
