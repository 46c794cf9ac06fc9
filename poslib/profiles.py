"""Run-size profiles: one ``profile`` parameter in every notebook picks all sizes at once.

- ``smoke``: seconds to minutes for the whole book; what the tests and CI run.
- ``cpu``: the default and the book's published numbers, sized for a 2-core CPU.
- ``paper``: the official protocol in full (15 epochs, batch 32), for a GPU box.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .train import TrainConfig


@dataclass(frozen=True)
class Profile:
    name: str
    epochs: int  # read-out training epochs (the paper: 15, lr x0.1 at epoch 10)
    seeds: int  # independent read-out seeds per cell
    demo_images: int  # synthetic training images in the Method section's end-to-end demo

    def train_config(self, seed: int = 0) -> TrainConfig:
        """The official SGD protocol with this profile's epochs; the lr drop keeps its 2/3 position."""
        drop = max(1, round(self.epochs * 10 / 15))
        return TrainConfig(epochs=self.epochs, lr_milestones=(drop,), seed=seed)

    def as_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", epochs=3, seeds=1, demo_images=16),
    "cpu": Profile("cpu", epochs=15, seeds=3, demo_images=96),
    "paper": Profile("paper", epochs=15, seeds=3, demo_images=256),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; an unknown name raises ValueError listing the valid ones."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}")
    return PROFILES[name]
