"""The OpenAPI 3.1 document of the API. Tests validate it and check real responses against it."""

from __future__ import annotations

import copy
import functools
from typing import Any

from service.messages import LANGUAGES
from service.pipeline import shingan_version
from service.report import SCHEMA
from service.verdict import Rule

STR = {"type": "string"}
NSTR = {"type": ["string", "null"]}
NINT = {"type": ["integer", "null"]}
NNUM = {"type": ["number", "null"]}
BOOL = {"type": "boolean"}
STRS = {"type": "array", "items": STR}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
    }


_INGREDIENT: dict[str, Any] = _obj(
    {
        "title": NSTR,
        "format": NSTR,
        "relationship": NSTR,
        "manifest_label": NSTR,
        "has_manifest": BOOL,
        "claim_generator": NSTR,
        "signer": NSTR,
        "digital_source_type": NSTR,
        "ai_declared": BOOL,
        "failures": STRS,
        "thumbnail": {**NSTR, "description": "data: URI, only with ?thumbnails=1"},
        "ingredients": {"type": "array", "items": {"$ref": "#/components/schemas/Ingredient"}},
    }
)

_C2PA = _obj(
    {
        "state": {"enum": ["absent", "invalid", "valid", "trusted", "error"]},
        "ai_declared": BOOL,
        "digital_source_type": NSTR,
        "ai_declarations": {
            "type": "array",
            "items": _obj({"digital_source_type": STR, "where": STR}),
        },
        "claim_generator": NSTR,
        "title": NSTR,
        "format": NSTR,
        "manifest_label": NSTR,
        "signer": {
            "oneOf": [
                {"type": "null"},
                _obj(
                    {
                        "common_name": NSTR,
                        "organization": NSTR,
                        "issuer": NSTR,
                        "issuer_organization": NSTR,
                        "serial": NSTR,
                        "algorithm": NSTR,
                        "not_before": NSTR,
                        "not_after": NSTR,
                    }
                ),
            ]
        },
        "signed_at": NSTR,
        "timestamp": {
            "oneOf": [
                {"type": "null"},
                _obj({"authority": NSTR, "time": NSTR, "trusted": BOOL}),
            ]
        },
        "actions": {
            "type": "array",
            "items": _obj(
                {
                    "action": STR,
                    "software_agent": NSTR,
                    "digital_source_type": NSTR,
                    "when": NSTR,
                    "description": NSTR,
                }
            ),
        },
        "ingredients": {"type": "array", "items": {"$ref": "#/components/schemas/Ingredient"}},
        "codes": _obj({"success": STRS, "informational": STRS, "failure": STRS}),
        "status": {
            "type": "array",
            "items": _obj(
                {
                    "code": STR,
                    "kind": {"enum": ["success", "informational", "failure"]},
                    "scope": {"enum": ["active", "ingredient"]},
                    "explanation": STR,
                    "url": STR,
                }
            ),
        },
        "integrity_failures": STRS,
        "credential_failures": STRS,
        "other_failures": STRS,
        "ingredient_failures": STRS,
        "thumbnail": NSTR,
        "remote_url": NSTR,
        "error": NSTR,
    }
)

_METADATA = _obj(
    {
        "generator": NSTR,
        "ai_declared": BOOL,
        "digital_source_type": NSTR,
        "signatures": {
            "type": "array",
            "items": _obj(
                {
                    "name": STR,
                    "field": STR,
                    "evidence": STR,
                    "model": NSTR,
                    "sampler": NSTR,
                    "seed": NSTR,
                    "steps": NSTR,
                    "prompt": NSTR,
                    "negative_prompt": NSTR,
                    "variant": NSTR,
                }
            ),
        },
        "camera": {
            "oneOf": [
                {"type": "null"},
                _obj(
                    {
                        "make": NSTR,
                        "model": NSTR,
                        "lens": NSTR,
                        "serial": NSTR,
                        "capture_time": NSTR,
                    }
                ),
            ]
        },
        "software": STRS,
        "editors": STRS,
        "modified_at": NSTR,
        "has_gps": BOOL,
        "has_makernote": BOOL,
        "inconsistencies": STRS,
        "fields": {"type": "object", "additionalProperties": STR},
        "error": NSTR,
    }
)

_WATERMARK = _obj(
    {
        "scheme": {"enum": ["sd1", "sd2", "sdxl"]},
        "label": STR,
        "detected": BOOL,
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "payload": NSTR,
        "bits_matched": {"type": "integer", "minimum": 0},
        "bits_total": {"type": "integer", "minimum": 1},
        "threshold": {"type": "integer"},
        "p_chance": {"type": "number", "minimum": 0, "maximum": 1},
        "size_tried": STR,
        "applicable": BOOL,
        "note": NSTR,
    }
)

_DETECTOR = _obj(
    {
        "name": STR,
        "version": STR,
        "kind": STR,
        "applicable": BOOL,
        "score": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "threshold": {"type": ["number", "null"]},
        "threshold_fpr": {"type": ["number", "null"]},
        "above_threshold": BOOL,
        "notes": STR,
        "details": {"type": "object"},
    }
)

_REASON = _obj(
    {
        "signal": {"enum": ["c2pa", "watermark", "metadata", "known_media", "detector"]},
        "finding": STR,
        "effect": {"enum": ["supports", "contradicts", "neutral"]},
        "detail": STR,
        "rule": {"type": "integer", "enum": [int(r) for r in Rule]},
    }
)

_REPORT = _obj(
    {
        "schema": {"const": SCHEMA},
        "id": STR,
        "language": {"enum": list(LANGUAGES), "description": "language of summary and reasons"},
        "created_at": {"type": "string", "format": "date-time"},
        "media": _obj(
            {
                "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "bytes": {"type": "integer", "minimum": 1},
                "mime": STR,
                "kind": {"enum": ["image", "video", "audio", "other"]},
                "width": NINT,
                "height": NINT,
                "duration_s": NNUM,
                "frames_analyzed": NINT,
                "filename": NSTR,
                "hashes": _obj(
                    {
                        "pdq": {**NSTR, "description": "PDQ hash, 64 hex digits"},
                        "pdq_quality": NINT,
                        "frames": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "time_s": {"type": "number"},
                                    "pdq": STR,
                                    "pdq_quality": {"type": "integer"},
                                }
                            ),
                        },
                    }
                ),
            }
        ),
        "verdict": _obj(
            {
                "label": {"enum": ["authentic", "ai_generated", "manipulated", "inconclusive"]},
                "confidence": {"enum": ["high", "medium", "low"]},
                "basis": {
                    "type": "array",
                    "items": {"enum": ["c2pa", "watermark", "metadata", "known_media", "detector"]},
                },
                "score": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                "summary": STR,
                "rule": {"type": "integer", "enum": [int(r) for r in Rule]},
                "stability": {
                    "description": "detector-only decisions: re-scoring after re-encodings",
                    "oneOf": [
                        {"type": "null"},
                        _obj(
                            {
                                "stable": BOOL,
                                "tried": {
                                    "type": "array",
                                    "items": _obj(
                                        {
                                            "variant": STR,
                                            "scores": {"type": "object"},
                                            "decision_holds": BOOL,
                                        }
                                    ),
                                },
                            }
                        ),
                    ],
                },
                "reasons": {"type": "array", "items": {"$ref": "#/components/schemas/Reason"}},
            }
        ),
        "provenance": _obj(
            {
                "c2pa": {"$ref": "#/components/schemas/C2pa"},
                "metadata": {"$ref": "#/components/schemas/Metadata"},
                "watermarks": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/Watermark"},
                },
            }
        ),
        "detectors": {"type": "array", "items": {"$ref": "#/components/schemas/Detector"}},
        "matches": {
            "type": "array",
            "items": _obj(
                {
                    "bank": STR,
                    "entry": STR,
                    "distance": {"type": "integer", "minimum": 0, "maximum": 256},
                    "label": {"enum": ["authentic", "ai_generated", "manipulated"]},
                    "note": STR,
                }
            ),
        },
        "timeline": {
            "type": "array",
            "description": "video only: one entry per analysed frame",
            "items": _obj(
                {
                    "time_s": {"type": "number"},
                    "pdq": NSTR,
                    "scores": {
                        "type": "object",
                        "additionalProperties": {"type": ["number", "null"]},
                    },
                    "faces": NINT,
                }
            ),
        },
        "forensics": {
            "oneOf": [
                {"type": "null"},
                _obj({"error_level": STR, "noise": STR}),
            ],
            "description": "with ?forensics=1: PNG data: URIs of the error-level and noise maps",
        },
        "warnings": STRS,
        "abstentions": {
            "type": "array",
            "description": "typed reasons pixel signals say little (route to a person)",
            "items": _obj(
                {
                    "code": {
                        "enum": [
                            "too_small",
                            "heavily_recompressed",
                            "screenshot_like",
                            "illustration_like",
                            "no_faces",
                            "video_too_long",
                            "video_sparse",
                            "timed_out",
                        ]
                    },
                    "message": STR,
                }
            ),
        },
        "timings_ms": {"type": "object", "additionalProperties": {"type": "number"}},
        "versions": _obj(
            {
                "shingan": STR,
                "c2pa_sdk": STR,
                "c2pa_python": NSTR,
                "models": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "description": "sha256 of each detector model that ran",
                },
            }
        ),
    }
)

_ERROR = _obj({"error": _obj({"code": STR, "message": STR})})

_STATUS = {"enum": ["queued", "running", "done", "error"]}
_COUNTS = _obj(
    {k: {"type": "integer", "minimum": 0} for k in ("queued", "running", "done", "error")}
)
_BATCH_ITEM = _obj(
    {
        "position": {"type": "integer"},
        "filename": STR,
        "sha256": STR,
        "bytes": {"type": "integer"},
        "status": _STATUS,
        "attempts": {"type": "integer"},
        "label": NSTR,
        "report_id": NSTR,
        "error": {"oneOf": [{"type": "null"}, _obj({"code": NSTR, "message": NSTR})]},
        "finished_at": NSTR,
    }
)
_BATCH = _obj(
    {
        "id": STR,
        "status": {"enum": ["running", "done"]},
        "created_at": STR,
        "finished_at": NSTR,
        "total": {"type": "integer"},
        "counts": _COUNTS,
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "labels": {"type": "object", "additionalProperties": {"type": "integer"}},
        "language": STR,
        "webhook": {
            "oneOf": [
                {"type": "null"},
                _obj(
                    {
                        "url": STR,
                        "state": {
                            "enum": ["pending", "retrying", "delivered", "failed", "refused"]
                        },
                        "attempts": {"type": "integer"},
                    }
                ),
            ]
        },
        "webhook_secret": {
            "type": "string",
            "description": "only in the 202 answer, when the server generated the secret",
        },
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/BatchItem"}},
        "links": _obj({"self": STR, "results_csv": STR, "results_jsonl": STR}),
    },
    required=["id", "status", "total", "counts", "progress", "labels", "links"],
)
_BANK = _obj(
    {
        "name": STR,
        "label": {"enum": ["authentic", "ai_generated", "manipulated"]},
        "note": STR,
        "source": STR,
        "created_at": NSTR,
        "entries": {"type": "integer"},
    }
)
_ADDED = _obj(
    {
        "bank": STR,
        "added": {"type": "integer"},
        "errors": {
            "type": "array",
            "items": _obj({"file": STR, "code": STR, "message": STR}),
        },
    }
)


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_FILES_BODY = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {
                "file": {
                    "type": "array",
                    "items": {"type": "string", "contentMediaType": "application/octet-stream"},
                },
                "webhook_url": {"type": "string", "format": "uri"},
                "webhook_secret": {"type": "string"},
            },
            "required": ["file"],
        }
    },
    "application/zip": {"schema": {"type": "string", "contentMediaType": "application/zip"}},
}


def _batch_paths() -> dict[str, Any]:
    results = {
        "200": {"description": "one row or line per item, in upload order"},
        "404": _error_response("no batch with that id (or not yours)"),
    }
    return {
        "/v1/batches": {
            "post": {
                "operationId": "createBatch",
                "summary": "Analyse many files (or zip archives of them) in the background",
                "description": (
                    "Send files as multipart `file` fields (zips among them are expanded), or one "
                    "zip as the raw body. Archives are refused for unsafe paths or links, too "
                    "many members, or an expansion ratio over the limit. Identical files are "
                    "analysed once. With `webhook_url`, the finished batch is POSTed there, "
                    "signed: header `Shingan-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "
                    "'<t>.' + body>` with `webhook_secret` (generated and returned once if not "
                    "given); failures are retried with exponential back-off."
                ),
                "parameters": [
                    {
                        "name": "filename",
                        "in": "query",
                        "required": False,
                        "description": "name of a raw-body zip",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "lang",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": list(LANGUAGES)},
                    },
                ],
                "requestBody": {"required": True, "content": _FILES_BODY},
                "responses": {
                    "202": {
                        **_json("Batch", "accepted; poll the Location"),
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    "400": _error_response(
                        "no files; unsafe_archive, zip_bomb, too_many_files, bad_archive, "
                        "bad_webhook"
                    ),
                    "413": _error_response("the batch is over its size limit"),
                },
            }
        },
        "/v1/batches/{id}": {
            "get": {
                "operationId": "getBatch",
                "summary": "Status, progress and items of a batch",
                "parameters": [
                    _path_param("id"),
                    {
                        "name": "offset",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "default": 0},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 10000,
                            "default": 1000,
                        },
                    },
                ],
                "responses": {
                    "200": _json("Batch", "the batch with a page of its items"),
                    "400": _error_response("bad offset or limit"),
                    "404": _error_response("no batch with that id (or not yours)"),
                },
            }
        },
        "/v1/batches/{id}/results.csv": {
            "get": {
                "operationId": "getBatchResultsCsv",
                "summary": "Results as CSV (the columns of `shingan batch`)",
                "parameters": [_path_param("id")],
                "responses": results,
            }
        },
        "/v1/batches/{id}/results.jsonl": {
            "get": {
                "operationId": "getBatchResultsJsonl",
                "summary": "Results as JSON Lines: one report (or error) per item",
                "parameters": [_path_param("id")],
                "responses": results,
            }
        },
        "/v1/banks": {
            "get": {
                "operationId": "listBanks",
                "summary": "Known-media banks, with their entry counts",
                "responses": {
                    "200": {
                        "description": "the banks",
                        "content": {
                            "application/json": {
                                "schema": _obj(
                                    {
                                        "banks": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/Bank"},
                                        }
                                    }
                                )
                            }
                        },
                    }
                },
            },
            "post": {
                "operationId": "createBank",
                "summary": "Create a bank",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _obj(
                                {
                                    "name": {
                                        "type": "string",
                                        "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                                    },
                                    "label": {"enum": ["authentic", "ai_generated", "manipulated"]},
                                    "note": STR,
                                    "source": STR,
                                },
                                required=["name", "label"],
                            )
                        }
                    },
                },
                "responses": {
                    "201": _json("Bank", "created"),
                    "400": _error_response("bad name or label"),
                    "409": _error_response("a bank of that name exists"),
                },
            },
        },
        "/v1/banks/{name}": {
            "delete": {
                "operationId": "deleteBank",
                "summary": "Delete a bank and its entries",
                "parameters": [_path_param("name")],
                "responses": {
                    "204": {"description": "deleted"},
                    "404": _error_response("no bank of that name"),
                },
            }
        },
        "/v1/banks/{name}/entries": {
            "post": {
                "operationId": "addBankEntries",
                "summary": "Add entries: media files (hashed here) or a bank CSV",
                "parameters": [_path_param("name")],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "file": {"type": "array", "items": STR},
                                    "csv": STR,
                                    "label": STR,
                                    "note": STR,
                                    "source": STR,
                                },
                            }
                        },
                        "text/csv": {"schema": STR},
                    },
                },
                "responses": {
                    "200": _json("BankEntriesAdded", "entries added; per-file errors listed"),
                    "400": _error_response("bad CSV or label"),
                    "404": _error_response("no bank of that name"),
                    "415": _error_response("neither multipart nor CSV"),
                },
            }
        },
        "/v1/banks/{name}/entries.csv": {
            "get": {
                "operationId": "exportBank",
                "summary": "A bank as CSV (bank, entry, label, pdq, note, source)",
                "parameters": [_path_param("name")],
                "responses": {
                    "200": {"description": "the CSV", "content": {"text/csv": {"schema": STR}}},
                    "404": _error_response("no bank of that name"),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics: requests, latencies, verdicts, queue depth",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": STR}},
                    }
                },
            }
        },
    }


@functools.cache
def _document() -> dict[str, Any]:
    return {
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
        "paths": {
            "/v1/verify": {
                "post": {
                    "operationId": "verify",
                    "summary": "Analyse one file and return its report",
                    "description": (
                        "Send the file as multipart field `file`, or as the raw body with any "
                        "Content-Type. The type is detected from the bytes. Nothing is kept "
                        "after the response."
                    ),
                    "parameters": [
                        {
                            "name": "thumbnails",
                            "in": "query",
                            "required": False,
                            "description": "include C2PA thumbnails as data: URIs",
                            "schema": {"type": "boolean", "default": False},
                        },
                        {
                            "name": "lang",
                            "in": "query",
                            "required": False,
                            "description": (
                                "language of summary and reasons (en, ja); "
                                "otherwise Accept-Language, then en"
                            ),
                            "schema": {"type": "string", "enum": list(LANGUAGES)},
                        },
                        {
                            "name": "forensics",
                            "in": "query",
                            "required": False,
                            "description": "include error-level and noise maps as data: URIs",
                            "schema": {"type": "boolean", "default": False},
                        },
                        {
                            "name": "filename",
                            "in": "query",
                            "required": False,
                            "description": "name to record for a raw-body upload",
                            "schema": {"type": "string", "maxLength": 255},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "file": {
                                            "type": "string",
                                            "contentMediaType": "application/octet-stream",
                                        }
                                    },
                                    "required": ["file"],
                                }
                            },
                            "application/octet-stream": {
                                "schema": {
                                    "type": "string",
                                    "contentMediaType": "application/octet-stream",
                                }
                            },
                            "*/*": {
                                "schema": {
                                    "type": "string",
                                    "contentMediaType": "application/octet-stream",
                                }
                            },
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "the report",
                            "headers": {
                                "X-Shingan-Report-Id": {
                                    "schema": {"type": "string"},
                                    "description": "the report's id",
                                }
                            },
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Report"}
                                }
                            },
                        },
                        "400": _error_response("no file, or an empty one"),
                        "413": _error_response("the file is over the size limit"),
                        "415": _error_response("not a supported image, video or audio format"),
                        "422": _error_response("corrupt, or over the pixel limit"),
                    },
                }
            },
            "/v1/reports/{id}": {
                "get": {
                    "operationId": "getReport",
                    "summary": "A report made earlier (reports are kept; media is not)",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {
                            "description": "the report",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Report"}
                                }
                            },
                        },
                        "404": _error_response("no report with that id"),
                    },
                }
            },
            **_batch_paths(),
            "/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1 document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Liveness",
                    "responses": {
                        "200": {
                            "description": "the process is up",
                            "content": {
                                "application/json": {"schema": _obj({"status": {"const": "ok"}})}
                            },
                        }
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Readiness",
                    "responses": {
                        "200": {
                            "description": "ready to analyse",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Ready"}
                                }
                            },
                        },
                        "503": {
                            "description": "not ready; `checks` says why",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Ready"}
                                }
                            },
                        },
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
            "schemas": {
                "Report": _REPORT,
                "C2pa": _C2PA,
                "Ingredient": _INGREDIENT,
                "Reason": _REASON,
                "Metadata": _METADATA,
                "Watermark": _WATERMARK,
                "Detector": _DETECTOR,
                "Error": _ERROR,
                "Batch": _BATCH,
                "BatchItem": _BATCH_ITEM,
                "Bank": _BANK,
                "BankEntriesAdded": _ADDED,
                "Ready": _obj(
                    {"status": {"enum": ["ready", "not_ready"]}, "checks": {"type": "object"}}
                ),
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the OpenAPI document."""
    return copy.deepcopy(_document())
