"""Which ONNX Runtime execution providers a session asks for, and a check that it got them."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from attnserve.artifact.manifest import ServingHints
from attnserve.service.errors import ProviderUnavailable
from attnserve.service.onnxruntime_env import onnxruntime as ort
from attnserve.service.settings import ProviderChoice, Settings

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"

# CPU ends every list: accelerators hand it the nodes they cannot run.
_EXPLICIT = {"cpu": (CPU,), "cuda": (CUDA, CPU), "tensorrt": (TENSORRT, CUDA, CPU)}

CPUINFO = Path("/proc/cpuinfo")
# cgroup v2's cpu.max ("QUOTA PERIOD" or "max PERIOD"), or v1's cpu/cpu.cfs_quota_us (-1: none)
CGROUP = Path("/sys/fs/cgroup")
# x86 instructions that add uint8 x int8 products in 32 bits, exactly (VPDPBUSD). Without
# them ONNX Runtime's uint8 x int8 kernels add products in saturating 16-bit pairs.
_EXACT_INT8_DOT_PRODUCTS = frozenset({"avx512_vnni", "avx_vnni"})
SKIP_LAYER_NORM_FUSION = "SkipLayerNormFusion"


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags as Linux's /proc/cpuinfo lists them (x86); empty where none are."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return frozenset()
    for line in lines:
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def has_exact_int8_dot_products(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU's flags name VNNI; False where none are listed."""
    return not _EXACT_INT8_DOT_PRODUCTS.isdisjoint(cpu_flags(cpuinfo))


def cpu_quota(cgroup: Path = CGROUP) -> float | None:
    """The CPUs' worth of time this process's cgroup may use (a container's CPU limit), or
    None where none is set or none can be read."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def usable_cores(cgroup: Path = CGROUP) -> int:
    """The cores this process may run on: its CPU affinity (every core outside Linux), within
    its container's CPU limit, rounded up."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity outside Linux
        cores = os.cpu_count() or 1
    quota = cpu_quota(cgroup)
    return cores if quota is None else max(1, min(cores, math.ceil(quota)))


@dataclass(frozen=True)
class Parallelism:
    """How one model's computing shares the cores."""

    batches_at_once: int
    threads_per_batch: int
    """ONNX Runtime's threads inside an operator of one batch; 0: ONNX Runtime decides."""


@dataclass(frozen=True)
class SessionConfig:
    """How to open sessions: providers in preference order, and ONNX Runtime's threads."""

    providers: tuple[str, ...]
    exact: bool
    """True for an explicit choice: a session that does not run on providers[0] is an error."""
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    batch_concurrency: int | None = None
    """Every model's batches computing at once, or None: as each model's serving hint says."""
    cores: int = field(default_factory=usable_cores)
    spinning: bool | None = None
    """Every session's, or None: each model's serving hint."""
    fuse_skip_layer_norm: bool | None = None
    """Every session's, or None: on accelerators only (settings.py)."""
    exact_int8: bool = field(default_factory=has_exact_int8_dot_products)
    """The CPU adds ONNX Runtime's default uint8 x int8 products exactly (VNNI)."""

    @classmethod
    def from_settings(
        cls, settings: Settings, available: Sequence[str] | None = None
    ) -> SessionConfig:
        return cls(
            providers=resolve_providers(settings.providers, available),
            exact=settings.providers != "auto",
            intra_op_threads=settings.intra_op_threads,
            inter_op_threads=settings.inter_op_threads,
            batch_concurrency=settings.batch_concurrency,
            spinning=settings.intra_op_spinning,
            fuse_skip_layer_norm=settings.fuse_skip_layer_norm,
        )

    def parallelism(self, hints: ServingHints) -> Parallelism:
        """A model whose manifest hints `batch_per_core` computes on the CPU, unless the
        batches at once are set, one one-thread batch per core it may use (`intra_op_threads`
        of them when set); any other, or on an accelerator, the batches set (one by default)
        with the threads set."""
        per_core = hints.batch_per_core and self.providers[0] == CPU
        if per_core and self.batch_concurrency is None:
            return Parallelism(self.intra_op_threads or self.cores, threads_per_batch=1)
        return Parallelism(self.batch_concurrency or 1, self.intra_op_threads)

    def session_options(self, hints: ServingHints | None = None) -> ort.SessionOptions:
        """The options of a session whose model's manifest gives these serving hints."""
        hints = hints or ServingHints()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.parallelism(hints).threads_per_batch
        options.inter_op_num_threads = self.inter_op_threads
        # Spinning threads wait a moment for work hot before they sleep (settings.py).
        spinning = hints.spinning if self.spinning is None else self.spinning
        spin = "1" if spinning else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        # Without VNNI, int8 MatMuls as uint8 x uint8, exact on any x86 CPU: the default
        # uint8 x int8 kernels saturate there, and the shipped encoder answered differently
        # (0.567 against 0.661 for the README's sentence). With VNNI the default kernels give
        # the same bits, faster.
        if not self.exact_int8:
            options.add_session_config_entry("session.x64quantprecision", "1")
        return options

    @property
    def disabled_optimizers(self) -> tuple[str, ...]:
        """ONNX Runtime's graph optimisers a session leaves out."""
        fuse = self.fuse_skip_layer_norm
        # ONNX Runtime's CPU SkipLayerNormalization kernel is slower than the Add and
        # LayerNormalization it replaces (settings.py); accelerators' kernels are not measured
        if fuse is False or (fuse is None and self.providers[0] == CPU):
            return (SKIP_LAYER_NORM_FUSION,)
        return ()

    def open_session(self, path: Path, hints: ServingHints | None = None) -> ort.InferenceSession:
        """A session on the graph at `path`, whose manifest gives these serving hints."""
        return ort.InferenceSession(
            str(path),
            self.session_options(hints),
            providers=list(self.providers),
            disabled_optimizers=list(self.disabled_optimizers),
        )

    def check_active(self, active: Sequence[str]) -> str:
        """The provider a session runs on; ONNX Runtime falls back silently, we don't."""
        if self.exact and (not active or active[0] != self.providers[0]):
            raise ProviderUnavailable(
                f"Asked ONNX Runtime for {self.providers[0]} but the session runs on "
                f"{active[0] if active else 'nothing'}: its libraries (CUDA, cuDNN, TensorRT) "
                "probably failed to load; ONNX Runtime's log says which."
            )
        return active[0]


def resolve_providers(
    choice: ProviderChoice, available: Sequence[str] | None = None
) -> tuple[str, ...]:
    """auto: the best available; an explicit choice that is not available is an error."""
    offered = list(ort.get_available_providers() if available is None else available)
    if choice == "auto":
        return (*(provider for provider in (TENSORRT, CUDA) if provider in offered), CPU)
    wanted = _EXPLICIT[choice]
    missing = [provider for provider in wanted if provider not in offered]
    if missing:
        raise ProviderUnavailable(
            f"ATTNSERVE_PROVIDERS={choice} needs {', '.join(missing)}, which this ONNX Runtime "
            f"does not offer (it offers {', '.join(offered)}). Install an onnxruntime build "
            "with it, or choose another provider."
        )
    return wanted
