"""Run-size profiles: one ``profile`` parameter in every notebook picks all sizes at once.

- ``smoke``: minutes for the whole book; what the tests and CI run. Numbers are not meaningful.
- ``cpu``: the default and the book's published numbers, sized for a 2-core CPU (no GPU).
- ``paper``: the official protocol in full, for a GPU box: its 4,950 SGD steps per read-out
  (10,553 DUT-S images / batch 32 x 15 epochs, the lr drop at 2/3 of the run) on whatever training
  set it is given (550 epochs of the offline pool's 264 photos, 15 of DUT-S), fp32 features,
  full-width stacked read-outs, one whole image per training photo, one noise image.

How ``cpu`` departs from the paper's protocol, and why:
- training set: 264 photos of the offline pool (the paper: 10,553 DUT-S images); to give SGD more
  steps, each training photo is used whole plus as 2 random crops (792 inputs);
- features are computed once in float32 on every machine (so the cache holds the same numbers
  whatever the CPU) and stored in bfloat16 (half the disk and memory; measured effect on SPC/MAE in
  the benchmarks; fp32 storage is one parameter away);
- stacked read-outs (Table 2) use a hidden width of 16 channels instead of the input width (1472
  for VGG16): at full width one stacked read-out costs ~90x more compute than the whole one-layer
  grid, hours on two CPU cores;
- noise is scored on 8 seeded noise images instead of the official single one;
- seeds vary each read-out's initialisation, while all read-outs of a grid see the same batch order
  (so the cache is read once per epoch for the whole grid); ``paper`` shuffles per seed.
- Section 4.2's task networks (trained from scratch): VGG16's layout at 1/8 of its width (8, 16,
  32, 64, 64 channels), 640 training composites of 224x224, 6 epochs, in bfloat16 where the
  hardware has it natively and float32 elsewhere (``precision="auto"``, ``poslib.precision``); ``paper``
  keeps VGG16's widths, 10,000 composites, 30 epochs, fp32. The input stays 224x224 in every
  profile: VGG16 without padding needs at least 196 pixels to leave its last block a map.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch

from .dense import TaskConfig
from .features import check_storage
from .precision import check_precision, resolve_precision
from .train import TrainConfig


def steps_per_epoch(n_inputs: int, batch_size: int = 32) -> int:
    return math.ceil(n_inputs / batch_size)


def epochs_for_steps(steps: int, n_inputs: int, batch_size: int = 32) -> int:
    """The whole number of epochs closest to ``steps`` SGD steps over ``n_inputs`` inputs (at least 1)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps!r}")
    return max(1, round(steps / steps_per_epoch(n_inputs, batch_size)))


@dataclass(frozen=True)
class Profile:
    name: str
    epochs: int  # read-out epochs on the profile's own training set (the paper: 15 over DUT-S, lr x0.1 at epoch 10)
    readout_steps: int  # SGD steps of a Table 1 read-out: the budget; another training set gets the epochs that keep it
    seeds: int  # independent read-out seeds per cell
    demo_images: int  # synthetic training images in the Method section's end-to-end demo
    train_photos: int | None  # training photos used (None: all of the pool's train split)
    train_crops: int  # inputs per training photo: the whole image plus (train_crops - 1) random crops
    test_photos: int | None  # test photos used (None: all)
    noise_images: int  # seeded low-intensity noise test images
    feature_storage: str  # dtype of cached features: "bf16" or "fp32"
    hidden_channels: int | None  # width of stacked read-outs' hidden layers (None: the input width)
    share_batch_order: bool = True  # all seeds of a grid train on the same batches (one cache pass per epoch)
    batch_size: int = 32  # read-out training batch (the paper: 32)
    task_width: int = 8  # Sec. 4.2 task networks: channels of the first block (VGG16: 64)
    task_train_images: int = 640  # training composites
    task_test_images: int = 200  # test composites
    task_epochs: int = 6
    feature_precision: str = "fp32"  # encoder arithmetic: fp32 gives the same features on every CPU
    task_precision: str = "auto"  # task networks: bf16 where native (2-3.5x faster), else fp32

    def __post_init__(self) -> None:
        for name in ("epochs", "readout_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        check_precision(self.feature_precision)
        check_precision(self.task_precision)
        check_storage(self.feature_storage)

    def for_inputs(self, n_inputs: int) -> Profile:
        """This profile with the epochs that give ``readout_steps`` SGD steps over ``n_inputs`` training
        inputs (the lr drop keeps its place at 2/3 of the run): on the profile's own training set
        (the offline pool for smoke and cpu) that is its ``epochs``; on DUT-S, the paper's 15."""
        return replace(self, epochs=epochs_for_steps(self.readout_steps, n_inputs, self.batch_size))

    def train_config(self, seed: int = 0) -> TrainConfig:
        """The official SGD protocol with this profile's epochs; the lr drop keeps its 2/3 position."""
        drop = max(1, round(self.epochs * 10 / 15))
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr_milestones=(drop,), seed=seed)

    def task_config(self, seed: int = 0, device: str | torch.device = "cpu") -> TaskConfig:
        """Optimisation of Sec. 4.2's task networks under this profile, its precision resolved for ``device``."""
        return TaskConfig(epochs=self.task_epochs, precision=resolve_precision(self.task_precision, device), seed=seed)

    def precisions(self, device: str | torch.device = "cpu") -> dict:
        """The precisions this profile resolves to on ``device``: recorded with every result."""
        return {"features": resolve_precision(self.feature_precision, device), "feature_storage": self.feature_storage,
                "task_networks": resolve_precision(self.task_precision, device)}

    def as_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", epochs=3, readout_steps=3, seeds=1, demo_images=16, train_photos=24, train_crops=1, test_photos=8,
                     noise_images=2, feature_storage="bf16", hidden_channels=16, task_width=4, task_train_images=48,
                     task_test_images=24, task_epochs=1),
    "cpu": Profile("cpu", epochs=15, readout_steps=375, seeds=3, demo_images=96, train_photos=None, train_crops=3, test_photos=None,
                   noise_images=8, feature_storage="bf16", hidden_channels=16),
    # the official run: 10,553 DUT-S images / batch 32 = 330 steps x 15 epochs = 4,950 steps per read-out
    "paper": Profile("paper", epochs=15, readout_steps=4950, seeds=3, demo_images=256, train_photos=None, train_crops=1,
                     test_photos=None, noise_images=1, feature_storage="fp32", hidden_channels=None,
                     share_batch_order=False, task_width=64, task_train_images=10_000, task_test_images=1000,
                     task_epochs=30, task_precision="fp32"),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; an unknown name raises ValueError listing the valid ones."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}")
    return PROFILES[name]
