"""Dataverse's error codes (HRESULTs as the Web API writes them in ``error.code``), one name each.

Raise sites use these names instead of bare hex strings; ``docs/reference/dataverse-web-api.md`` lists where
each comes from.
"""

from __future__ import annotations

from typing import Final

#: "An unexpected error occurred." (also the code of throttling by the platform's own limits)
UNEXPECTED: Final = "0x80040216"
#: A bad argument: an invalid value, an unknown column in a body, a bad parameter of a function.
INVALID_ARGUMENT: Final = "0x80040203"
#: A type mismatch or an undeclared property in a request body (OData's payload validation).
PAYLOAD_INVALID: Final = "0x80048d19"
#: No HRESULT: what Dataverse's OData layer writes for a name it cannot find (a property in ``$select``,
#: ``$expand``, ``$filter`` or a request body) before the platform sees the request.
UNSPECIFIED: Final = "0x0"
#: A query that OData cannot parse: a bad ``$filter``, an unknown option, a malformed key segment.
QUERY_SYNTAX: Final = "0x80060888"
#: "Resource not found for the segment ..." (unknown entity set, function or navigation property).
SEGMENT_NOT_FOUND: Final = "0x8006088a"
#: "Entity 'x' With Id = ... Does Not Exist".
OBJECT_DOES_NOT_EXIST: Final = "0x80040217"
#: "A record with matching key values already exists." (DuplicateRecord)
DUPLICATE_RECORD: Final = "0x80040237"
#: "The version of the existing record doesn't match the RowVersion property provided."
CONCURRENCY_VERSION_MISMATCH: Final = "0x80060882"
#: A value longer than the column's MaxLength, or outside its range.
VALUE_OUT_OF_RANGE: Final = "0x80044331"
#: A FetchXML document that cannot be parsed or used.
INVALID_FETCHXML: Final = "0x80041130"
#: Metadata that does not exist (an unknown table or column in EntityDefinitions).
METADATA_NOT_FOUND: Final = "0x80041102"
#: An attribute that does not exist on the table (metadata).
ATTRIBUTE_NOT_FOUND: Final = "0x80041103"
#: An aggregate query reading more rows than the aggregate limit (50,000): "AggregateQueryRecordLimit exceeded."
AGGREGATE_RECORD_LIMIT: Final = "0x8004e023"
#: A business rule (plug-in) aborted the operation (IsvAborted).
ISV_ABORTED: Final = "0x80040265"
#: A request body above the size the service accepts.
REQUEST_TOO_LARGE: Final = "0x8005f206"
#: A feature the service does not offer.
NOT_SUPPORTED: Final = "0x8004801a"
#: Service protection: "Number of requests exceeded the limit ...".
RATE_LIMIT_EXCEEDED: Final = "0x80072322"
#: Service protection: "Combined execution time of incoming requests exceeded limit ...".
EXECUTION_TIME_EXCEEDED: Final = "0x80072321"
#: Service protection: "Number of concurrent requests exceeded the limit of 52."
CONCURRENT_REQUESTS_EXCEEDED: Final = "0x80072326"
#: The caller lacks a privilege (PrivilegeDenied).
PRIVILEGE_DENIED: Final = "0x80040220"
