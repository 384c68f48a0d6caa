"""Export the MTCNN face detector (P-, R-, O-Net) to ONNX from the weights in facenet-pytorch.

    .venv-models/bin/python models/faces_mtcnn/export.py [--wheel PATH]

The weights are the state dicts that facenet-pytorch 2.6.0 (MIT licence, Tim Esler) ships inside
its wheel (``facenet_pytorch/data/{pnet,rnet,onet}.pt``); without ``--wheel`` the script fetches
that wheel from PyPI with ``pip download --no-deps`` (a one-off, development-time step). The three
networks are rebuilt here with the same layers (their own torch pin is too old for this
machine), the state dicts are loaded strictly, and each network is exported with its softmax:

    pnet.onnx  [1, 3, H, W] -> regression [1, 4, h, w], probability [1, 2, h, w]
    rnet.onnx  [N, 3, 24, 24] -> regression [N, 4], probability [N, 2]
    onet.onnx  [N, 3, 48, 48] -> regression [N, 4], landmarks [N, 10], probability [N, 2]

Inputs are RGB scaled as (pixel - 127.5) / 128. The detection pipeline (pyramid, NMS,
refinement) runs in numpy in ``detectors/faces.py``. The card's numbers come from
``models/faces_mtcnn/evaluate.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent


class PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.softmax5_1 = nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).contiguous()  # the weights expect this (converted) layout
        x = self.prelu4(self.dense4(x.reshape(x.shape[0], -1)))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.reshape(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def fetch_wheel(folder: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "facenet-pytorch==2.6.0",
            "-d",
            str(folder),
        ],
        check=True,
    )
    return next(folder.glob("facenet_pytorch-2.6.0-*.whl"))


def export(wheel: Path, out: Path) -> dict[str, str]:
    nets = {"pnet": PNet(), "rnet": RNet(), "onet": ONet()}
    shas = {}
    with zipfile.ZipFile(wheel) as zf:
        for name, net in nets.items():
            with tempfile.NamedTemporaryFile(suffix=".pt") as tmp:
                tmp.write(zf.read(f"facenet_pytorch/data/{name}.pt"))
                tmp.flush()
                state = torch.load(tmp.name, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
            net.eval()
            path = out / f"{name}.onnx"
            if name == "pnet":
                args = (torch.zeros(1, 3, 64, 64),)
                outputs = ["regression", "probability"]
                axes = {
                    "image": {2: "H", 3: "W"},
                    "regression": {2: "h", 3: "w"},
                    "probability": {2: "h", 3: "w"},
                }
            else:
                side = 24 if name == "rnet" else 48
                args = (torch.zeros(1, 3, side, side),)
                outputs = (
                    ["regression", "probability"]
                    if name == "rnet"
                    else ["regression", "landmarks", "probability"]
                )
                axes = {"image": {0: "N"}, **{o: {0: "N"} for o in outputs}}
            torch.onnx.export(
                net,
                args,
                str(path),
                input_names=["image"],
                output_names=outputs,
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
            shas[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return shas


def main() -> int:
    parser = argparse.ArgumentParser(description="Export MTCNN to ONNX")
    parser.add_argument("--wheel", type=Path, help="facenet_pytorch-2.6.0 wheel (else downloaded)")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        shas = export(wheel, HERE)
    for name, sha in shas.items():
        print(f"{name}.onnx sha256 {sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
