"""Reports made earlier: read back by the API and the page (reports are kept; media is not)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.app.errors import NotFound
from service.store import Store, Viewer

#: Report ids are 32 hex digits; anything much longer is not looked up.
MAX_ID = 64


@dataclass(frozen=True)
class Reports:
    store: Store

    def get(self, report_id: str, viewer: Viewer | None) -> dict[str, Any]:
        """The report's JSON form as it was made.

        Raises:
            NotFound: no such report, or not the caller's to see (the two look the same, so
                ids cannot be probed).
        """
        data = (
            self.store.reports.get_report(report_id, viewer) if len(report_id) <= MAX_ID else None
        )
        if data is None:
            raise NotFound("no report with that id")
        return data
