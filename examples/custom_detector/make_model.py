"""Build a tiny example detector folder: the worked example of docs/detectors.md.

    .venv/bin/python examples/custom_detector/make_model.py OUT_DIR

Writes ``OUT_DIR/brightness/brightness.onnx`` and its ``card.toml``. The "model" scores how
bright an image is (a logit of mean brightness): useless as a detector, but it shows every
piece a real one needs: an ONNX file, its sha256, the input specification, the output form,
calibration and a threshold with the false-positive rate it was chosen for. Needs the ``onnx``
package (a development dependency).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

CARD = """\
name = "brightness-example"
version = "0.1.0"
task = "synthetic_image"
implementation = "image_classifier"
summary = "Worked example: scores mean brightness. NOT a real detector."
licence = "Apache-2.0"
decision_threshold = "fpr_5"
failure_modes = ["says nothing about how an image was made"]

[files.model]
path = "brightness.onnx"
sha256 = "{sha256}"

[input]
size = [64, 64]
layout = "NCHW"
colour = "RGB"
scale = 0.00392156862745098
mean = [0.0, 0.0, 0.0]
std = [1.0, 1.0, 1.0]

[output]
kind = "logit"
positive_index = 0

[calibration]
kind = "temperature"
temperature = 1.0
bias = 0.0

[[thresholds]]
name = "fpr_5"
value = 0.9
false_positive_rate = 0.05

[training]
data = "none: the graph is written by hand"

[evaluation]
note = "not evaluated; an example of the card format only"
"""


def build(out_dir: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    folder = out_dir / "brightness"
    folder.mkdir(parents=True, exist_ok=True)
    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 3, 64, 64])
    y = helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["N", 1])
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    ten = helper.make_tensor("ten", TensorProto.FLOAT, [], [10.0])
    axes = helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3])
    nodes = [
        helper.make_node("ReduceMean", ["pixels", "axes"], ["m"], keepdims=1),
        helper.make_node("Sub", ["m", "half"], ["c"]),
        helper.make_node("Mul", ["c", "ten"], ["l4"]),
        helper.make_node("Flatten", ["l4"], ["logit"], axis=1),
    ]
    graph = helper.make_graph(nodes, "brightness", [x], [y], initializer=[half, ten, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = folder / "brightness.onnx"
    path.write_bytes(model.SerializeToString())
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "card.toml").write_text(CARD.format(sha256=sha), encoding="utf-8")
    return folder


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_model.py OUT_DIR")
    print(build(Path(sys.argv[1])))
