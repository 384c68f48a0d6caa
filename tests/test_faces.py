"""The shipped MTCNN face detector (models/faces_mtcnn) through the registry and the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from detectors.faces import Mtcnn, _nms, _square
from detectors.registry import DetectorSet, Registry
from samples.make_samples import draw_scene
from service.pipeline import AnalyzeOptions, analyze
from tests.conftest import sample, shared_path


@pytest.fixture(scope="module")
def mtcnn() -> Mtcnn:
    det = Registry().create("faces-mtcnn")
    assert isinstance(det, Mtcnn)
    return det


def test_card_and_files_verify(mtcnn: Mtcnn) -> None:
    assert mtcnn.card.task == "face_detection"
    assert {f.role for f in mtcnn.card.files} == {"pnet", "rnet", "onet"}
    assert float(mtcnn.card.evaluation["recall_32px"]) >= 0.9


def test_no_faces_in_a_landscape(mtcnn: Mtcnn) -> None:
    result = mtcnn.analyze_image(draw_scene(1280, 720, seed=77))
    assert result.details["faces"] == 0
    assert result.notes == "no faces found"
    assert result.score is None


@pytest.mark.shared
def test_finds_a_face_in_a_photograph(mtcnn: Mtcnn) -> None:
    path = shared_path("train", "real", "real_c2paverify_SNL_20201115_111808_M.jpg")
    rgb = np.asarray(Image.open(path).convert("RGB"))
    faces = mtcnn.detect(rgb)
    assert faces
    top = faces[0]
    assert top.score > 0.8
    assert top.size > 150
    assert len(top.landmarks) == 5
    x1, y1, x2, y2 = top.box
    assert 0 <= x1 < x2 <= rgb.shape[1] + 5
    assert 0 <= y1 < y2 <= rgb.shape[0] + 5


def test_pipeline_says_no_faces_instead_of_scoring(mtcnn: Mtcnn) -> None:
    options = AnalyzeOptions(detectors=DetectorSet((mtcnn,)))
    r = analyze(sample("unsigned.jpg"), options).to_dict()
    assert "no faces found" not in r["warnings"]  # not a problem with the file
    assert {"code": "no_faces", "message": "no faces found"} in r["abstentions"]
    face = next(d for d in r["detectors"] if d["kind"] == "face_detection")
    assert face["score"] is None
    assert r["verdict"]["score"] is None
    video = analyze(sample("signed_video.mp4"), options).to_dict()
    assert [e["faces"] for e in video["timeline"]] == [0, 0]


def test_nms_and_square() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    keep = _nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]
    sq = _square(np.array([[0.0, 0.0, 10.0, 4.0, 1.0]]))
    assert sq[0, 2] - sq[0, 0] == pytest.approx(sq[0, 3] - sq[0, 1])


def test_the_last_detection_is_reused_only_for_the_same_pixels(
    mtcnn: Mtcnn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Face detector and face-manipulation detector share one cascade run per image: a
    read-only array is known again by identity, any other by a hash of its pixels."""
    from detectors import faces as faces_mod

    faces_mod.clear_face_cache()
    runs: list[int] = []
    real = Mtcnn._detect

    def counted(self: Mtcnn, rgb: np.ndarray) -> list[faces_mod.Face]:
        runs.append(1)
        return real(self, rgb)

    monkeypatch.setattr(Mtcnn, "_detect", counted)
    frozen = draw_scene(320, 240, seed=5)
    frozen.flags.writeable = False
    mtcnn.detect(frozen)
    mtcnn.detect(frozen)
    assert len(runs) == 1
    same_pixels = frozen.copy()  # writeable, another object: known by its hash
    mtcnn.detect(same_pixels)
    assert len(runs) == 2
    mtcnn.detect(same_pixels)
    assert len(runs) == 2
    same_pixels[0, 0] ^= 1  # changed in place: the hash tells
    mtcnn.detect(same_pixels)
    assert len(runs) == 3
    other = frozen.copy()
    other.flags.writeable = False  # equal pixels, another object: not taken for the first
    mtcnn.detect(frozen)
    mtcnn.detect(other)
    assert len(runs) == 5
