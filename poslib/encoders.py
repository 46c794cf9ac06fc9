"""Frozen encoders whose forward returns the multi-scale taps of Sec. 3.1 (f1..f5).

``build_encoder(name, weights=...)`` gives a module in eval mode with no trainable parameters; it
takes RGB images in [0, 1] (N, 3, H, W), applies the preprocessing its weights expect, and returns a
list of feature maps. Taps come from torchvision's ``create_feature_extractor``.

| name          | taps (channels @ side for a 224 input)                                       |
|---------------|-------------------------------------------------------------------------------|
| vgg16         | relu1_2 64@224, relu2_2 128@112, relu3_3 256@56, relu4_3 512@28, relu5_3 512@14 |
| vgg16_bn      | the same taps of VGG16 with BatchNorm (CRAFT's backbone: f5 is relu5_2)       |
| vgg16_nopad   | the same layers with every conv's zero padding removed (Sec. 4)              |
| mobilenet_v2  | features.1 16@112, .3 24@56, .6 32@28, .13 96@14, .18 1280@7 (last at each size) |
| efficientnet_lite0 | blocks.0 16@112, .2 24@56, .4 40@28, .10 112@14, head 1280@7 (last at each size; TF "SAME" padding) |
| resnet152     | layer1 256@56, layer2 512@28, layer3 1024@14, layer4 2048@7 (as the official code; no stem) |
| none          | the image itself: PosENet alone                                               |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision import models
from torchvision.models.feature_extraction import create_feature_extractor

from .efficientnet_lite import EfficientNetLite0, Lite0Features, SamePadConv2d
from .padding import PartialConv2d, check_padding_mode, set_padding
from .weights import (CRAFT_MLT25K, EFFICIENTNET_LITE0, HED_BSDS500, MOBILENET_V2_TORCHVISION, VGG16_CAFFE, Preprocess,
                      official_kind, torchvision_state_dict)


@dataclass(frozen=True)
class Arch:
    taps: dict[str, str]  # torchvision node -> public tap name
    channels: tuple[int, ...]
    weights: tuple[str, ...]  # valid values of ``weights`` besides "random"


VGG16_TAPS = {"3": "relu1_2", "8": "relu2_2", "15": "relu3_3", "22": "relu4_3", "29": "relu5_3"}
VGG16_BN_TAPS = {"5": "relu1_2", "12": "relu2_2", "22": "relu3_3", "32": "relu4_3", "42": "relu5_3"}
CRAFT_TAPS = {**{k: v for k, v in VGG16_BN_TAPS.items() if k != "42"}, "39": "relu5_2"}
ARCHS: dict[str, Arch] = {
    # "hed": the VGG16 body of the HED edge detector (BSDS500), a network trained for a dense task.
    "vgg16": Arch(VGG16_TAPS, (64, 128, 256, 512, 512), ("imagenet", "torchvision", "hed")),
    # "craft": the backbone of the CRAFT text detector; "torchvision": ImageNet VGG16-BN (online).
    "vgg16_bn": Arch(VGG16_BN_TAPS, (64, 128, 256, 512, 512), ("craft", "torchvision")),
    "vgg16_nopad": Arch(VGG16_TAPS, (64, 128, 256, 512, 512), ("imagenet", "torchvision")),
    "mobilenet_v2": Arch({"1": "features.1", "3": "features.3", "6": "features.6", "13": "features.13",
                          "18": "features.18"}, (16, 24, 32, 96, 1280), ("imagenet", "torchvision")),
    "efficientnet_lite0": Arch({"blocks.0": "blocks.0", "blocks.2": "blocks.2", "blocks.4": "blocks.4",
                                "blocks.10": "blocks.10", "head": "head"}, (16, 24, 40, 112, 1280), ("imagenet",)),
    "resnet152": Arch({f"layer{i}": f"layer{i}" for i in range(1, 5)}, (256, 512, 1024, 2048), ("imagenet", "torchvision")),
    "none": Arch({}, (3,), ("none",)),
}
ENCODERS: tuple[str, ...] = tuple(ARCHS)


def check_encoder(name: str, weights: str | None = None) -> None:
    """Raise ValueError naming the valid values for an unknown encoder or weights."""
    if name not in ARCHS:
        raise ValueError(f"unknown encoder {name!r}; valid encoders: {', '.join(ENCODERS)}")
    valid = ARCHS[name].weights + (() if name == "none" else ("random",))
    if weights is not None and weights not in valid:
        raise ValueError(f"unknown weights {weights!r} for {name}; valid: {', '.join(valid)}")


class Encoder(nn.Module):
    """A frozen feature extractor: images (N, 3, H, W) in [0, 1] -> list of taps (N, C_i, H_i, W_i)."""

    def __init__(self, name: str, weights: str, body: nn.Module | None, preprocess: Preprocess,
                 tap_names: list[str], tap_channels: list[int], provenance: dict) -> None:
        super().__init__()
        self.name, self.weights = name, weights
        self.preprocess, self.body = preprocess, body
        self.tap_names, self.tap_channels, self.provenance = tap_names, tap_channels, provenance
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "Encoder":
        return super().train(False)  # frozen: BatchNorm statistics never change

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected RGB images (N, 3, H, W), got shape {tuple(images.shape)}")
        x = self.preprocess(images)
        return [x] if self.body is None else list(self.body(x).values())

    def describe(self) -> dict:
        return {"encoder": self.name, "weights": self.weights, "taps": self.tap_names,
                "channels": self.tap_channels, "preprocess": self.preprocess.kind, **self.provenance}


def _vgg16_features(weights: str, seed: int, weights_path: str | Path | None, pad: bool) -> tuple[nn.Module, dict, str]:
    if weights == "random":
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            features = models.vgg16(weights=None).features  # torchvision's own VGG init
        prov, pre = {"source": "random init", "seed": seed}, "caffe"
    elif weights in ("imagenet", "hed") and weights_path is None:
        bundled = VGG16_CAFFE if weights == "imagenet" else HED_BSDS500
        features = models.vgg16(weights=None, init_weights=False).features
        features.load_state_dict(bundled.state_dict(), strict=True)
        prov, pre = bundled.provenance(), bundled.preprocess
    else:  # torchvision's VGG16 (online, TORCH_HOME cache, or a local file)
        state, prov = torchvision_state_dict(models.VGG16_Weights.IMAGENET1K_V1, weights_path)
        features = models.vgg16(weights=None, init_weights=False).features
        features.load_state_dict({k[len("features."):]: v for k, v in state.items() if k.startswith("features.")},
                                 strict=True)
        pre = "torchvision"
    if not pad:
        for m in features.modules():
            if isinstance(m, nn.Conv2d):
                m.padding = (0, 0)
        prov = {**prov, "padding": "removed from every conv (weights unchanged)"}
    return features, prov, pre


def _vgg16_bn_features(weights: str, seed: int, weights_path: str | Path | None) -> tuple[nn.Module, dict]:
    if weights == "craft":
        features = models.vgg16_bn(weights=None, init_weights=False).features[:40]  # up to relu5_2
        features.load_state_dict(CRAFT_MLT25K.state_dict(), strict=True)
        return features, CRAFT_MLT25K.provenance()
    model, prov = _torchvision_model(models.vgg16_bn, models.VGG16_BN_Weights.IMAGENET1K_V1, None, weights, seed,
                                     weights_path)
    return model.features, prov


def _torchvision_model(builder, enum: models.WeightsEnum, bundled, weights: str, seed: int,
                       weights_path: str | Path | None) -> tuple[nn.Module, dict]:
    """A torchvision classifier with seeded random weights, bundled ImageNet weights (if any), or
    torchvision's own file (download, cache or ``weights_path``)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = builder(weights=None)  # torchvision's own init: the random control
    if weights == "random":
        return model, {"source": "random init", "seed": seed}
    if weights == "imagenet" and bundled is not None and weights_path is None:
        model.load_state_dict(bundled.state_dict(), strict=True)
        return model, bundled.provenance()
    state, prov = torchvision_state_dict(enum, weights_path)
    model.load_state_dict(state, strict=True)
    return model, prov


def _mobilenet_v2(weights: str, seed: int, weights_path: str | Path | None) -> tuple[nn.Module, dict]:
    return _torchvision_model(models.mobilenet_v2, models.MobileNet_V2_Weights.IMAGENET1K_V1,
                              MOBILENET_V2_TORCHVISION, weights, seed, weights_path)


def _efficientnet_lite0(weights: str, seed: int, weights_path: str | Path | None) -> tuple[nn.Module, dict]:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = EfficientNetLite0()  # PyTorch's default init: the random control
    if weights == "random":
        return Lite0Features(net), {"source": "random init", "seed": seed}
    if weights_path is not None:
        net.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True), strict=True)
        return Lite0Features(net), {"source": "local file", "file": str(weights_path)}
    net.load_state_dict(EFFICIENTNET_LITE0.state_dict(), strict=True)
    return Lite0Features(net), EFFICIENTNET_LITE0.provenance()


def _resnet152(weights: str, seed: int, weights_path: str | Path | None) -> tuple[nn.Module, dict]:
    # No registry package bundles an ImageNet ResNet: torchvision's file only, never a substitute.
    return _torchvision_model(models.resnet152, models.ResNet152_Weights.IMAGENET1K_V1, None, weights, seed,
                              weights_path)


def build_encoder(name: str, weights: str = "imagenet", *, preprocess: str = "weights", seed: int = 0,
                  weights_path: str | Path | None = None, padding_mode: str = "zeros") -> Encoder:
    """A frozen encoder returning its multi-scale taps (Sec. 3.1 of the paper).

    Args:
        name: one of ``ENCODERS``.
        weights: "imagenet" (the bundled ImageNet weights; for resnet152 torchvision's file),
            "torchvision" (torchvision's IMAGENET1K_V1, online or cached), "hed" (vgg16: the HED
            edge detector's body), "craft" (vgg16_bn: the CRAFT text detector's backbone),
            "random" (the same network, seeded torchvision init: a control), "none" for name="none".
        preprocess: "weights" (the input the weights were trained with; random weights get the
            same as the architecture's ImageNet weights), "official" (what the official code's
            unnormalised [0, 1] input amounts to for these weights: ``weights.official_kind``), or a
            ``Preprocess`` kind to force one, e.g. "tensor" for raw [0, 1] RGB.
        seed: seed of the random init.
        weights_path: a local weights file (torchvision format) instead of a download.
        padding_mode: every padding conv's mode (``padding.PADDING_MODES``; weights unchanged).
            "zeros" is the network as trained; any other mode is part of the encoder's identity
            (its provenance, hence its feature-cache key).
    """
    if not isinstance(name, str) or not isinstance(weights, str):
        raise ValueError(f"encoder name and weights must be strings, got name={name!r}, weights={weights!r}")
    if name == "none" and weights == "imagenet":
        weights = "none"  # PosENet alone has no weights; accept the default
    check_encoder(name, weights)
    arch = ARCHS[name]
    if name == "none":
        kind = "tensor" if preprocess in ("weights", "official") else preprocess
        return Encoder(name, weights, None, Preprocess(kind), ["image"], [3], {"source": "no encoder"})
    taps = dict(arch.taps)
    if name in ("vgg16", "vgg16_nopad"):
        module, prov, kind = _vgg16_features(weights, seed, weights_path, pad=name == "vgg16")
    elif name == "efficientnet_lite0":
        module, prov = _efficientnet_lite0(weights, seed, weights_path)
        kind = EFFICIENTNET_LITE0.preprocess
    elif name == "vgg16_bn":
        module, prov = _vgg16_bn_features(weights, seed, weights_path)
        taps = CRAFT_TAPS if weights == "craft" else taps
        kind = "torchvision"
    else:
        module, prov = (_mobilenet_v2 if name == "mobilenet_v2" else _resnet152)(weights, seed, weights_path)
        if name == "mobilenet_v2":
            module = module.features
        kind = "torchvision"
    if check_padding_mode(padding_mode) != "zeros":
        set_padding(module, padding_mode)
        prov = {**prov, "padding_mode": padding_mode}
    if preprocess == "official":
        kind = official_kind(kind)
    elif preprocess != "weights":
        kind = preprocess
    body = create_feature_extractor(module.eval(), return_nodes=taps,
                                    # their padding needs real shapes
                                    tracer_kwargs={"leaf_modules": [PartialConv2d, SamePadConv2d]})
    return Encoder(name, weights, body, Preprocess(kind), list(taps.values()), list(arch.channels), prov)


def imagenet_classifier(weights_path: str | Path | None = None) -> tuple[nn.Module, Preprocess, list[str]]:
    """MobileNetV2 with its 1000-class ImageNet head, its preprocessing and class names.

    Used to check that the bundled weights are the real ImageNet ones (they classify photos).
    """
    model, _ = _mobilenet_v2("imagenet", 0, weights_path)
    return model.eval(), Preprocess("torchvision"), list(models.MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])
