"""The banks of the application layer, used without Flask (as the CLI or a worker would)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from provenance.media import Limits
from service.app.banks import Banks
from service.app.errors import BadRequest, Conflict, Forbidden, NotFound
from service.store import Store, Viewer, default_url
from tests.conftest import sample


@pytest.fixture
def banks(tmp_path: Path) -> Iterator[Banks]:
    store = Store(default_url(tmp_path))
    yield Banks(store, Limits(), tmp_path)
    store.close()


@contextlib.contextmanager
def as_path(path: Path) -> Iterator[Path]:
    yield path


def test_creation_rules(banks: Banks) -> None:
    alice, bob = Viewer("key:alice"), Viewer("key:bob")
    with pytest.raises(BadRequest, match="name"):
        banks.create({"name": "-bad", "label": "authentic"}, "key:alice", alice)
    with pytest.raises(BadRequest, match="label"):
        banks.create({"name": "b", "label": "genuine"}, "key:alice", alice)
    with pytest.raises(Forbidden):
        banks.create({"name": "b", "label": "authentic", "shared": "yes"}, "key:alice", alice)
    assert banks.create({"name": "b", "label": "authentic"}, "key:alice", alice) == "b"
    with pytest.raises(Conflict):
        banks.create({"name": "b", "label": "authentic"}, "key:alice", alice)
    with pytest.raises(NotFound):  # private to alice
        banks.visible("b", bob)
    assert banks.visible("b", alice, write=True).name == "b"


def test_media_in_csv_out_and_back(banks: Banks, tmp_path: Path) -> None:
    banks.create({"name": "known", "label": "manipulated"}, "me", None)
    garbage = tmp_path / "not-media.bin"
    garbage.write_bytes(b"\x00" * 64)
    added, errors = banks.add_media(
        "known",
        [("tampered.jpg", as_path(sample("tampered.jpg"))), ("x.bin", as_path(garbage))],
        label=None,
        note="from a test",
        source="",
        caller="me",
        viewer=None,
    )
    assert added == 1
    assert [e["file"] for e in errors] == ["x.bin"]
    csv_text = "".join(banks.export_lines("known"))
    assert "manipulated" in csv_text
    banks.create({"name": "copy", "label": "manipulated"}, "me", None)
    assert banks.import_csv("copy", io.BytesIO(csv_text.encode()), "me") == 1
    with pytest.raises(BadRequest) as bad:
        banks.import_csv("copy", io.BytesIO(b"\xff\xfe not a csv"), "me")
    assert bad.value.code == "bad_csv"
