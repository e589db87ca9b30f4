"""``/Metadata/``: F&O's read-only metadata service, served from a :class:`MetadataCatalog`.

Routes (``GET`` only; any other method is a 405 with ``Allow: GET``)::

    /Metadata/                                         service document (the four collections)
    /Metadata/DataEntities[?$filter&$select&$top&$skip&$count&$orderby]
    /Metadata/DataEntities('CustCustomerV3Entity')     one document ($select allowed), 404 when unknown
    /Metadata/PublicEntities, /Metadata/PublicEntities('CustomerV3')
    /Metadata/PublicEnumerations, /Metadata/PublicEnumerations('SalesStatus')
    /Metadata/Labels(Id='@SCM:CustomerAccount',Language='en-us')
    /Metadata/<collection>/$count                      the count as plain text

``Name`` keys compare case-insensitively, as the real service's SQL collation does. Labels are answered in
any language with the sandbox's one (English) text; an ID that names no label answers with the ID itself as
its ``Value`` (``docs/reference/fno-odata.md`` section 1). Errors use F&O's error shape, rendered by the
app's error handler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from sandbox.errors import BadRequest, MethodNotAllowed, NotFound
from sandbox.odata.fno import dictquery
from sandbox.odata.fno.codes import NO_CODE
from sandbox.odata.fno.dictquery import DocumentType, odata_error
from sandbox.odata.fno.metadata import (
    DATA_ENTITY_TYPE,
    DEFAULT_LANGUAGE,
    LABEL_TYPE,
    PUBLIC_ENTITY_TYPE,
    PUBLIC_ENUMERATION_TYPE,
    MetadataCatalog,
)
from sandbox.odata.responses import json_response
from sandbox.odata.urls import Segment, parse_key_predicate, parse_segment, split_path

#: the service root
METADATA_ROOT = "/Metadata/"

_COLLECTIONS: dict[str, tuple[DocumentType, str]] = {
    "DataEntities": (DATA_ENTITY_TYPE, "data entity"),
    "PublicEntities": (PUBLIC_ENTITY_TYPE, "public entity"),
    "PublicEnumerations": (PUBLIC_ENUMERATION_TYPE, "public enumeration"),
}


def metadata_blueprint(catalog_of: Callable[[], MetadataCatalog], name: str = "fno_metadata") -> Blueprint:
    """The ``/Metadata/`` service; ``catalog_of`` gives the catalog (built on first use, then kept)."""
    blueprint = Blueprint(name, __name__, url_prefix=METADATA_ROOT.rstrip("/"))
    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]

    def dispatch(path: str) -> Response:
        if request.method != "GET":
            raise MethodNotAllowed(
                f"The requested resource does not support http method '{request.method}'.",
                NO_CODE,
                headers={"Allow": "GET"},
            )
        args = {key: value for key, value in request.args.items(multi=False)}
        base = request.host_url.rstrip("/") + METADATA_ROOT
        response = MetadataRequest(catalog_of(), base, args).answer(path)
        response.headers.setdefault("OData-Version", "4.0")
        return response

    blueprint.add_url_rule("/", "root", dispatch, methods=methods, defaults={"path": ""}, strict_slashes=False)
    blueprint.add_url_rule("/<path:path>", "resource", dispatch, methods=methods)
    return blueprint


class MetadataRequest:
    """One GET below ``/Metadata/``."""

    def __init__(self, catalog: MetadataCatalog, base: str, args: dict[str, str]) -> None:
        self.catalog = catalog
        self.base = base
        self.args = args

    def answer(self, path: str) -> Response:
        if path.strip("/") == "":
            return json_response(
                {
                    "@odata.context": f"{self.base}$metadata",
                    "value": [{"name": name, "kind": "EntitySet", "url": name} for name in (*_COLLECTIONS, "Labels")],
                }
            )
        segments = [parse_segment(part) for part in split_path(path)]
        head, rest = segments[0], segments[1:]
        if head.name == "Labels":
            return self._labels(head, rest)
        if head.name not in _COLLECTIONS:
            raise _not_found(f"No entity set named '{head.name}' in the metadata service.")
        doc_type, kind = _COLLECTIONS[head.name]
        if head.args is None:
            if rest and (rest[0].name != "$count" or len(rest) > 1):
                raise _not_found(f"No resource named '{'/'.join(s.name for s in rest)}' on '{head.name}'.")
            documents = self.catalog.collection(head.name)
            if rest:
                result = dictquery.query(documents, {k: v for k, v in self.args.items() if k == "$filter"}, doc_type)
                return Response(str(len(result.documents)), content_type="text/plain; charset=utf-8")
            return self._collection(head.name, documents, doc_type)
        if rest:
            raise _not_found(f"No resource named '{'/'.join(s.name for s in rest)}' on '{head.name}'.")
        name = _name_key(head)
        document = self.catalog.find(head.name, name)
        if document is None:
            raise _not_found(f"No {kind} named '{name}' exists.")
        return self._single(head.name, document, doc_type)

    def _collection(self, name: str, documents: list[dict[str, Any]], doc_type: DocumentType) -> Response:
        result = dictquery.query(documents, self.args, doc_type)
        context = f"{self.base}$metadata#{name}"
        if result.select is not None:
            context += f"({','.join(result.select)})"
        body: dict[str, Any] = {"@odata.context": context}
        if result.count is not None:
            body["@odata.count"] = result.count
        body["value"] = result.documents
        return json_response(body)

    def _single(self, name: str, document: dict[str, Any], doc_type: DocumentType) -> Response:
        dictquery.check_options(self.args)
        for option in ("$filter", "$top", "$skip", "$count", "$orderby"):
            if option in self.args:
                raise odata_error(f"The query option '{option}' is not allowed on a single entity.")
        select = dictquery.parse_select(self.args.get("$select"), doc_type)
        context = f"{self.base}$metadata#{name}"
        context += f"({','.join(select)})/$entity" if select is not None else "/$entity"
        body: dict[str, Any] = {"@odata.context": context}
        body.update(dictquery.project(document, select))
        return json_response(body)

    def _labels(self, head: Segment, rest: list[Segment]) -> Response:
        if rest:
            raise _not_found(f"No resource named '{'/'.join(s.name for s in rest)}' on 'Labels'.")
        if head.args is None:
            documents = [
                {"Id": label_id, "Language": DEFAULT_LANGUAGE, "Value": text}
                for label_id, text in self.catalog.labels.items()
            ]
            return self._collection("Labels", documents, LABEL_TYPE)
        named, _bare = parse_key_predicate(head.args)
        if named is None or {k.lower() for k in named} != {"id", "language"}:
            raise BadRequest(
                "The key in the request URI is not valid for resource 'Microsoft.Dynamics.Metadata.Label'. "
                "Give every key property: (Id,Language).",
                NO_CODE,
            )
        values = {k.lower(): v for k, v in named.items()}
        label_id, language = values["id"], values["language"]
        if not isinstance(label_id, str) or not isinstance(language, str):
            raise BadRequest("The label key takes two strings: Id='@SCM:Name',Language='en-us'.", NO_CODE)
        text = self.catalog.labels.text(label_id)
        document = {"Id": label_id, "Language": language, "Value": label_id if text is None else text}
        return self._single("Labels", document, LABEL_TYPE)


def _name_key(segment: Segment) -> str:
    named, bare = parse_key_predicate(segment.args or "")
    if named is not None:
        if set(named) != {"Name"}:
            raise BadRequest(
                f"The key in the request URI is not valid for resource '{segment.name}'. Give the key: (Name).",
                NO_CODE,
            )
        bare = named["Name"]
    if not isinstance(bare, str):
        raise BadRequest(f"The key of '{segment.name}' is a name: {segment.name}('Name').", NO_CODE)
    return bare


def _not_found(detail: str) -> NotFound:
    return NotFound("Resource not found for the segment.", NO_CODE, detail=detail)
