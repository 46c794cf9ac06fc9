import pytest
import torch

from poslib.data import synthetic_images
from poslib.patterns import make_pattern
from poslib.profiles import get_profile
from poslib.readout import PosENet
from poslib.train import TrainConfig, evaluate_readout, pick_device, train_readout

SMALL = 56  # read-outs here upsample to 56x56 to keep the tests fast


def coordinate_taps(n: int, seed: int = 0) -> torch.Tensor:
    """Features that carry position explicitly (x, y channels, as CoordConv) plus content noise."""
    g = torch.Generator().manual_seed(seed)
    c = torch.linspace(0, 1, 28)
    y, x = torch.meshgrid(c, c, indexing="ij")
    coords = torch.stack([x, y]).expand(n, 2, 28, 28)
    return torch.cat([coords, torch.rand(n, 2, 28, 28, generator=g)], dim=1)


def test_readout_learns_position_when_features_carry_it():
    target = make_pattern("H", SMALL)
    r = PosENet(4, seed=0, out_size=SMALL)
    result = train_readout(r, coordinate_taps(64), target, TrainConfig(epochs=15, batch_size=16), progress=False)
    assert result.epoch_loss[-1] < 0.2 * result.epoch_loss[0]
    ev = evaluate_readout(r, coordinate_taps(8, seed=1), target)
    assert ev.spc.shape == (8,) and ev.mae.shape == (8,) and ev.predictions.shape == (8, SMALL, SMALL)
    assert ev.spc.min() > 0.99 and ev.mae.max() < 0.05


def test_unpadded_readout_on_uniform_images_has_no_position():
    target = make_pattern("G", SMALL)
    r = PosENet(3, padding=0, seed=0, out_size=SMALL)
    train_readout(r, synthetic_images("noise", 32, size=64), target, TrainConfig(epochs=3, batch_size=8), progress=False)
    ev = evaluate_readout(r, synthetic_images("black", 2, size=64), target)
    assert ev.spc.tolist() == [0.0, 0.0]  # a constant map: defined as 0, never NaN
    assert torch.allclose(ev.predictions, ev.predictions.flatten()[0].expand_as(ev.predictions))


def run(seed: int, init_seed: int = 0):
    r = PosENet(3, padding=1, seed=init_seed, out_size=SMALL)
    res = train_readout(r, synthetic_images("noise", 24, size=64, seed=5), make_pattern("HS", SMALL),
                        TrainConfig(epochs=3, batch_size=8, seed=seed), progress=False)
    return res, r


def test_same_seed_same_numbers():
    (a, ra), (b, rb) = run(0), run(0)
    assert a.batch_loss == b.batch_loss
    assert all(torch.equal(x, y) for x, y in zip(ra.state_dict().values(), rb.state_dict().values()))
    c, _ = run(1)
    assert c.batch_loss != a.batch_loss


def test_learning_rate_drops_at_the_milestone():
    r = PosENet(3, seed=0, out_size=SMALL)
    cfg = TrainConfig(epochs=3, batch_size=8, lr=0.5, lr_milestones=(1,))
    res = train_readout(r, synthetic_images("noise", 8, size=32), make_pattern("H", SMALL), cfg, progress=False)
    assert len(res.epoch_loss) == 3 and len(res.batch_loss) == 3
    assert get_profile("cpu").train_config().lr_milestones == (10,)  # the official schedule
    assert get_profile("cpu").train_config(seed=2).seed == 2


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="target must be"):
        train_readout(PosENet(3, out_size=SMALL), torch.rand(2, 3, 8, 8), make_pattern("H", 224), progress=False)
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="valid profiles: smoke, cpu, paper"):
        get_profile("fast")
    with pytest.raises(ValueError, match="valid: black, white, noise"):
        synthetic_images("grey")
    assert pick_device("cpu").type == "cpu"
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_noise_has_the_official_statistics(data_dir):
    import numpy as np
    from PIL import Image

    official = np.asarray(Image.open(data_dir / "noise.jpg").convert("RGB"), dtype=float)
    ours = synthetic_images("noise", 1, seed=0)[0].numpy() * 255
    assert ours.min() == 0 and ours.max() <= 200 and official.max() <= 200
    assert abs(ours.mean() - official.mean()) < 2 and abs(ours.std() - official.std()) < 3
    assert torch.equal(synthetic_images("noise", 2, seed=7), synthetic_images("noise", 2, seed=7))
    assert not torch.equal(synthetic_images("noise", 1, seed=7), synthetic_images("noise", 1, seed=8))


def test_evaluation_summary_averages_over_images():
    r = PosENet(3, padding=1, seed=0, out_size=SMALL)
    ev = evaluate_readout(r, synthetic_images("noise", 5, size=32), make_pattern("V", SMALL), batch_size=2)
    s = ev.summary()
    assert s["n_images"] == 5 and s["spc_mean"] == pytest.approx(ev.spc.mean().item())
    assert s["mae_sd"] == pytest.approx(ev.mae.std().item())
    one = evaluate_readout(r, synthetic_images("white", 1, size=32), make_pattern("V", SMALL)).summary()
    assert one["spc_sd"] == 0.0 and one["n_images"] == 1
