"""The OpenAPI 3.1 document, generated: paths from the app's routes, schemas from typed models.

Each API view declares its operation where it is routed (``@documented(...)``): summary,
parameters, request body and the answers it gives. :func:`openapi_document` walks the app's URL
map, so a route and its documentation cannot drift apart, and a public route without an operation
is an error. Response schemas are pydantic models: the report's come from :mod:`service.contract`
(also the source of ``docs/report.schema.json``), the API's own bodies are declared below.
Tests validate the document and check real responses against it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from flask import Flask
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from provenance.errors import ShinganError
from service import contract
from service.messages import LANGUAGES
from service.version import shingan_version

_REF = "#/components/schemas/{model}"

#: Routes outside ``/v1`` that are part of the API (the rest are pages and static files).
_API_PATHS = ("/v1/", "/healthz", "/readyz", "/metrics")

F = TypeVar("F", bound=Callable[..., Any])


# --- the API's own bodies --------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class ErrorDetail(_Body):
    code: str
    message: str


class Error(_Body):
    error: ErrorDetail


BatchStatus = Literal["queued", "running", "done", "error"]
Count = Annotated[int, Field(ge=0)]


class ItemError(_Body):
    code: str | None
    message: str | None


class BatchItem(_Body):
    position: int
    filename: str
    sha256: str
    bytes: int
    status: BatchStatus
    attempts: int
    label: str | None
    report_id: str | None
    error: ItemError | None
    finished_at: str | None


class Counts(_Body):
    queued: Count
    running: Count
    done: Count
    error: Count


class Webhook(_Body):
    url: str
    state: Literal["pending", "retrying", "delivered", "failed", "refused"]
    attempts: int


class BatchLinks(_Body):
    self: str
    results_csv: str
    results_jsonl: str


def _may_be_absent(schema: dict[str, Any]) -> None:
    """A field some answers leave out (never null): drop the ``None`` default's traces."""
    schema.pop("default", None)
    variants = schema.pop("anyOf", None)
    if variants:
        schema.update(next(v for v in variants if v != {"type": "null"}))


_ABSENT = Field(default=None, json_schema_extra=_may_be_absent)


class Batch(_Body):
    """A batch. ``created_at``, ``language`` and ``items`` are left out of the 202 answer."""

    id: str
    status: Literal["running", "done"]
    created_at: str | None = _ABSENT
    finished_at: str | None = None
    total: int
    counts: Counts
    progress: contract.Probability
    labels: dict[str, int]
    language: str | None = _ABSENT
    webhook: Webhook | None = None
    webhook_secret: str | None = Field(
        default=None,
        description="only in the 202 answer, when the server generated the secret",
        json_schema_extra=_may_be_absent,
    )
    items: list[BatchItem] | None = _ABSENT
    links: BatchLinks

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)


class Bank(_Body):
    name: str
    label: contract.BankLabel
    note: str
    source: str
    created_at: str | None
    entries: int
    shared: bool = Field(description="used by every caller's verifications (read-only to them)")
    owner: str | None = Field(description="the key that made it; null for an operator's bank")
    writable: bool = Field(description="whether the caller may add to it or delete it")


class BankList(_Body):
    banks: list[Bank]


class NewBank(_Body):
    name: Annotated[str, Field(pattern="^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    label: contract.BankLabel
    note: str = ""
    source: str = ""


class EntryError(_Body):
    file: str
    code: str
    message: str


class BankEntriesAdded(_Body):
    bank: str
    added: int
    errors: list[EntryError]


class Ready(_Body):
    status: Literal["ready", "not_ready"]
    checks: dict[str, Any] | None = _ABSENT

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)


class JobProgress(_Body):
    frames_done: Count
    frames_total: Count


class VerifyJob(_Body):
    """A verification running in the background (``POST /v1/verify?async=1``)."""

    id: str
    status: Literal["queued", "running", "done", "error", "cancelled"]
    filename: str | None
    progress: JobProgress
    eta_s: float | None = Field(description="seconds left at the pace so far")
    report_id: str | None = Field(description="when done: GET /v1/reports/{report_id}")
    error: ErrorDetail | None
    links: dict[str, str]


class Health(_Body):
    status: Literal["ok"]


_MODELS: tuple[type[BaseModel], ...] = (
    *contract.REPORT_MODELS,
    Error,
    Batch,
    BatchItem,
    Bank,
    BankList,
    NewBank,
    BankEntriesAdded,
    Ready,
    Health,
    VerifyJob,
)


def components() -> dict[str, Any]:
    """Every named schema, as OpenAPI ``components/schemas``."""
    _, top = models_json_schema(
        [(m, "serialization") for m in _MODELS],
        ref_template=_REF,
        schema_generator=contract.SchemaGenerator,
    )
    schemas: dict[str, Any] = top["$defs"]
    return copy.deepcopy(schemas)


# --- operations, declared at the routes --------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A query parameter (path parameters come from the route)."""

    name: str
    schema: Mapping[str, Any]
    description: str = ""


#: ``lang``, as every endpoint that writes summaries takes it.
LANG = Param(
    "lang",
    {"type": "string", "enum": list(LANGUAGES)},
    "language of summary and reasons (en, ja); otherwise Accept-Language, then en",
)
_BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}


@dataclass(frozen=True)
class Answer:
    """One response: a model (JSON body), a media type with a plain schema, or no body."""

    description: str
    model: type[BaseModel] | None = None
    media_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    id: str
    summary: str
    answers: Mapping[int, Answer | str]  # a bare string: an Error answer with that description
    description: str = ""
    params: tuple[Param, ...] = ()
    body: Mapping[str, Any] | None = None  # request body content, by media type

    def render(self, path_params: list[str]) -> dict[str, Any]:
        op: dict[str, Any] = {"operationId": self.id, "summary": self.summary}
        if self.description:
            op["description"] = self.description
        params = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in path_params
        ] + [
            {
                "name": p.name,
                "in": "query",
                "required": False,
                "schema": dict(p.schema),
                **({"description": p.description} if p.description else {}),
            }
            for p in self.params
        ]
        if params:
            op["parameters"] = params
        if self.body is not None:
            op["requestBody"] = {"required": True, "content": copy.deepcopy(dict(self.body))}
        op["responses"] = {str(status): _answer(a) for status, a in self.answers.items()}
        return op


def _answer(a: Answer | str) -> dict[str, Any]:
    if isinstance(a, str):
        a = Answer(a, Error)
    out: dict[str, Any] = {"description": a.description}
    if a.headers:
        out["headers"] = {
            name: {"schema": {"type": "string"}, "description": text}
            for name, text in a.headers.items()
        }
    if a.model is not None:
        ref = _REF.format(model=a.model.__name__)
        out["content"] = {"application/json": {"schema": {"$ref": ref}}}
    elif a.media_type is not None:
        out["content"] = {a.media_type: {"schema": {"type": "string"}}}
    return out


def documented(op: Operation) -> Callable[[F], F]:
    """Attach ``op`` to a view; the document is built from the routes that carry one."""

    def mark(view: F) -> F:
        view.openapi_operation = op  # type: ignore[attr-defined]
        return view

    return mark


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}


def binary_body(*media_types: str) -> dict[str, Any]:
    return {t: {"schema": dict(_BINARY)} for t in media_types}


class UndocumentedRoute(ShinganError):
    """A public API route carries no ``@documented`` operation."""

    code = "undocumented_route"


_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def paths(app: Flask) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(_API_PATHS):
            continue
        view = app.view_functions[rule.endpoint]
        op: Operation | None = getattr(view, "openapi_operation", None)
        if op is None:
            raise UndocumentedRoute(f"{rule.rule} ({rule.endpoint}) has no @documented operation")
        path = _PARAM.sub(r"{\1}", rule.rule)
        names = _PARAM.findall(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.setdefault(path, {})[method.lower()] = op.render(names)
    return out


def openapi_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of ``app``, built once per app; each call returns a fresh copy."""
    cached: dict[str, Any] | None = app.extensions.get("shingan.openapi")
    if cached is None:
        cached = {
            "openapi": "3.1.0",
            "info": {
                "title": "Shingan API",
                "version": shingan_version(),
                "summary": "Provenance triage of suspect media: C2PA, signals and one verdict.",
                "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
                "description": (
                    "When the server requires API keys (it does whenever it listens beyond "
                    "loopback), send `Authorization: Bearer <key>` or `X-API-Key: <key>`; without "
                    "one the answer is 401. Over a key's rate limit the answer is 429 with "
                    "`Retry-After` (seconds)."
                ),
            },
            "security": [{}, {"bearer": []}, {"apiKey": []}],
            "paths": paths(app),
            "components": {
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer"},
                    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                },
                "schemas": components(),
            },
        }
        app.extensions["shingan.openapi"] = cached
    return copy.deepcopy(cached)
