"""Reports read back through the application layer (the API and the page both use it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.app.errors import NotFound
from service.app.reports import Reports
from service.pipeline import analyze
from service.store import Store, Viewer, default_url
from tests.conftest import sample


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(default_url(tmp_path))
    yield store
    store.close()


def test_a_report_is_read_back_by_its_owner_and_admins_only(store: Store) -> None:
    data = analyze(sample("unsigned.jpg")).to_dict()
    store.reports.save_report(data, actor="key:desk")
    reports = Reports(store)
    assert reports.get(data["id"], Viewer("key:desk")) == data
    assert reports.get(data["id"], Viewer("key:ops", admin=True)) == data
    assert reports.get(data["id"], None) == data  # no keys in use: one trusted user
    with pytest.raises(NotFound, match="no report with that id"):
        reports.get(data["id"], Viewer("key:other"))  # the same answer as a missing one
    with pytest.raises(NotFound):
        reports.get("0" * 32, None)
    with pytest.raises(NotFound):
        reports.get(data["id"] + "x" * 64, None)  # not looked up at all
