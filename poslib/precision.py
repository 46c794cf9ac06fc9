"""Arithmetic precision: which one a machine runs fast, decided by a probe and recorded with results.

bfloat16 is about 2x faster than float32 where the hardware has it (CUDA GPUs since Ampere; x86
CPUs with AVX512-BF16 or AMX) and 5-8x *slower* where it is emulated (x86 CPUs with AVX2 only).
``precision="auto"`` picks bf16 only where it is native; "fp32" and "bf16" force a choice.
To see what an AVX2-only CPU does on a machine that has more, start Python with
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``: the probe then reports AVX2 and picks fp32.
"""

from __future__ import annotations

import os
from functools import lru_cache

import torch

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
CHOICES = ("auto", *PRECISIONS)
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 arithmetic
# The environment of a process that behaves as on an AVX2-only CPU (read when torch loads).
EMULATE_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def check_precision(precision: str, *, allow_auto: bool = True) -> str:
    """``precision`` if valid, else ValueError naming the valid values."""
    valid = CHOICES if allow_auto else tuple(PRECISIONS)
    if precision not in valid:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(valid)}")
    return precision


@lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_capability() -> str:
    """The vector instruction set torch's CPU kernels use here: "AVX2", "AVX512", ..."""
    return torch.backends.cpu.get_cpu_capability()


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """True where bf16 arithmetic runs in hardware on ``device`` (so bf16 is the fast choice)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type != "cpu":
        return False
    isa_cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    onednn_allows = isa_cap == "ALL" or "AMX" in isa_cap or "BF16" in isa_cap
    return cpu_capability().startswith("AVX512") and onednn_allows and bool(_cpu_flags() & set(BF16_CPU_FLAGS))


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """"fp32" or "bf16": ``precision`` itself, or for "auto" bf16 exactly where it is native."""
    check_precision(precision)
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def machine_record() -> dict:
    """What a result's speed and rounding depend on: CPU capability, native bf16, thread count."""
    return {"cpu_capability": cpu_capability(), "cpu_bf16_native": native_bf16("cpu"),
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
            "cuda_bf16_native": native_bf16("cuda") if torch.cuda.is_available() else None,
            "torch_threads": torch.get_num_threads()}
