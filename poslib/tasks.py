"""Section 4.2's experiments: task networks with and without padding (Table 5), and the position
information their encoders hold (Table 6).

``run_tasks`` trains one ``dense.TaskNet`` per (task, padding, seed) on composites with exact
masks, scores each on the held-out composites and returns a tidy table; trained networks are
checkpointed in ``$POSLIB_CACHE/tasks/`` (a finished network is loaded, an interrupted one resumes).
``task_encoders`` turns the trained bodies into frozen encoders for ``experiment.run_grid``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import pandas as pd
import torch

from .composites import Composites, CompositeSpec, make_composites
from .dense import (TASKS, TaskConfig, TaskNet, TaskRun, calibrate_batchnorm, check_task, predict, score_saliency,
                    score_segmentation, task_encoder, train_task)
from .encoders import Encoder
from .fetch import cache_root
from .profiles import Profile
from .stamps import CLASS_NAMES

ENCODER_NAMES = {"saliency": "vgg_sod", "segmentation": "vgg_ss"}  # the paper's VGG-SOD and VGG-SS
CONTROL_NAME = "vgg_task_random"  # the same architecture, untrained: what the architecture alone gives


def task_data(profile: Profile, *, seed: int = 0, centre_bias: float = 0.5) -> tuple[Composites, Composites]:
    """The profile's training and test composites (disjoint photos and cut-outs)."""
    train = make_composites(CompositeSpec(profile.task_train_images, "train", seed=seed, centre_bias=centre_bias))
    test = make_composites(CompositeSpec(profile.task_test_images, "test", seed=seed, centre_bias=centre_bias))
    return train, test


@dataclass
class TaskResults:
    table: pd.DataFrame  # one row per (task, padding, seed)
    runs: dict[tuple[str, bool, int], TaskRun]
    examples: dict[tuple[str, bool, int], torch.Tensor] = field(default_factory=dict)  # first test predictions


def _checkpoint_key(task: str, pad: bool, train: Composites, config: TaskConfig, width: int,
                    padding_mode: str = "zeros") -> str:
    spec = {"task": task, "pad": pad, "train": train.key, "width": width, "config": asdict(config)}
    if padding_mode not in ("zeros", "none"):  # zero padding and none keep the keys they always had
        spec["padding_mode"] = padding_mode
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def train_and_score(task: str, padding_mode: str, seed: int, train: Composites, test: Composites, profile: Profile, *,
                    device: torch.device | str = "cpu", progress: bool = True) -> tuple[TaskRun, torch.Tensor, dict]:
    """One task network with ``padding_mode`` (``dense.TASK_PADDINGS``), trained (or loaded from its
    checkpoint) and scored on ``test``: (run, test predictions, scores)."""
    check_task(task)
    n_classes = len(CLASS_NAMES)
    net = TaskNet(1 if task == "saliency" else n_classes, width=profile.task_width, seed=seed,
                  pad=padding_mode != "none", padding_mode="zeros" if padding_mode == "none" else padding_mode)
    config = profile.task_config(seed, device)
    key = _checkpoint_key(task, net.pad, train, config, profile.task_width, padding_mode)
    label = {"zeros": "pad", "none": "nopad"}.get(padding_mode, padding_mode)
    ckpt = cache_root() / "tasks" / f"{task}-{label}-{key}.pt"
    images, labels = train.tensors()
    test_images, test_labels = test.tensors()
    run = train_task(net, images, labels, task, config, checkpoint=ckpt, device=device, progress=progress)
    scores = predict(net, test_images, device=device, precision=config.precision)
    if task == "saliency":
        metrics = score_saliency(scores, test_labels)
    else:
        seg = score_segmentation(scores, test_labels, n_classes)
        metrics = {"miou": seg["miou"], **{f"iou_{c}": v for c, v in zip(CLASS_NAMES, seg["iou_per_class"])}}
    row = {**metrics, "train_seconds": run.seconds, "epochs": len(run.epoch_loss), "final_train_loss": run.epoch_loss[-1],
           "n_train": len(train), "n_test": len(test), "width": profile.task_width, "precision": config.precision}
    return run, scores, row


def run_tasks(train: Composites, test: Composites, profile: Profile, *, tasks=TASKS, pads=(True, False),
              seeds=(0,), device: torch.device | str = "cpu", keep_examples: int = 4, progress: bool = True) -> TaskResults:
    """Train, checkpoint and score one task network per (task, padding, seed)."""
    for t in tasks:
        check_task(t)
    rows, runs, examples = [], {}, {}
    for task in tasks:
        for pad in pads:
            for seed in seeds:
                run, scores, row = train_and_score(task, "zeros" if pad else "none", seed, train, test, profile,
                                                   device=device, progress=progress)
                runs[(task, pad, seed)] = run
                examples[(task, pad, seed)] = scores[:keep_examples]
                rows.append({"task": task, "padding": "zero padding" if pad else "no padding", "seed": seed, **row})
    return TaskResults(pd.DataFrame(rows), runs, examples)


def summarize_tasks(table: pd.DataFrame) -> pd.DataFrame:
    """Table 5: mean and standard deviation over seeds of each score, per task and padding."""
    scores = [c for c in ("fmeasure", "mae", "miou", "mae_border", "mae_interior") if c in table]
    g = table.groupby(["task", "padding"], sort=False)
    out = g.agg(**{f"{c}_{s}": (c, s) for c in scores for s in ("mean", "std")},
                n_seeds=("seed", "nunique"), train_seconds_mean=("train_seconds", "mean")).reset_index()
    out = out.rename(columns={f"{c}_std": f"{c}_sd" for c in scores})
    for c in scores:  # one seed: sd 0 (as the read-out tables); a score the task does not have stays empty
        out[f"{c}_sd"] = out[f"{c}_sd"].where(out[f"{c}_mean"].isna() | out[f"{c}_sd"].notna(), 0.0)
    return out


def task_encoders(results: TaskResults, task: str, *, pad: bool = True) -> dict[int, Encoder]:
    """The trained bodies of ``task``'s networks as frozen encoders, one per seed."""
    out = {}
    for (t, p, seed), run in results.runs.items():
        if t == task and p == pad:
            prov = {"source": f"trained here for {task} (Sec. 4.2)", "seed": seed, "checkpoint": str(run.checkpoint)}
            out[seed] = task_encoder(run.net, ENCODER_NAMES[task], prov)
    return out


def control_encoders(train: Composites, profile: Profile, seeds=(0,), *, calibration_images: int = 256,
                     device: torch.device | str = "cpu") -> dict[int, Encoder]:
    """Untrained task networks (zero padding, the profile's width) as frozen encoders, one per seed,
    with BatchNorm statistics estimated on the first training composites."""
    images = train.tensors()[0][:calibration_images]
    out = {}
    for seed in seeds:
        net = calibrate_batchnorm(TaskNet(1, width=profile.task_width, pad=True, seed=seed), images, device=device)
        prov = {"source": "random init (torch defaults), BatchNorm statistics from training composites", "seed": seed}
        out[seed] = task_encoder(net.cpu(), CONTROL_NAME, prov, weights="random")
    return out
