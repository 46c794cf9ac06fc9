"""poslib: how much position information do CNNs encode? (Islam, Jia & Bruce, ICLR 2020).

Modules, one job each: ``patterns`` (target maps), ``metrics`` (SPC, MAE), ``readout`` (PosENet),
``train`` (the training protocol), ``data`` (inputs), ``profiles`` (run sizes), ``plots``.
"""

from .data import SYNTHETIC, synthetic_images
from .metrics import mae, spc
from .patterns import PATTERNS, make_pattern
from .profiles import PROFILES, Profile, get_profile
from .readout import PosENet
from .train import Evaluation, TrainConfig, TrainResult, evaluate_readout, pick_device, train_readout

__version__ = "0.1.0"

__all__ = [
    "PATTERNS", "PROFILES", "SYNTHETIC", "Evaluation", "PosENet", "Profile", "TrainConfig", "TrainResult",
    "evaluate_readout", "get_profile", "mae", "make_pattern", "pick_device", "spc", "synthetic_images",
    "train_readout",
]
