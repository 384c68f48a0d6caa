"""Streamed downloads shared by the API and the pages: batch results and bank CSVs."""

from __future__ import annotations

from flask import Response, stream_with_context

from service.web.access import actor, viewer
from service.web.context import state


def batch_results(batch_id: str, kind: str) -> Response:
    """A batch's results (``csv`` or ``jsonl``) as a streamed download, for its owner."""
    batches = state().batches()
    batches.owned(batch_id, actor())
    mimetype = "text/csv" if kind == "csv" else "application/x-ndjson"
    lines = stream_with_context(batches.result_lines(batch_id, kind))
    response = Response(lines, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="shingan-{batch_id}.{kind}"'
    return response


def bank_csv(name: str) -> Response:
    """A bank as CSV, for whoever may see it."""
    banks = state().banks()
    banks.visible(name, viewer())
    response = Response(stream_with_context(banks.export_lines(name)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response
