"""Execution-provider resolution: auto picks the best available; an explicit choice is exact."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from attnserve.artifact.manifest import MODEL_FILE, ServingHints
from attnserve.service.errors import ProviderUnavailable
from attnserve.service.loading import load_artifact
from attnserve.service.providers import (
    CPU,
    CUDA,
    SKIP_LAYER_NORM_FUSION,
    TENSORRT,
    Parallelism,
    SessionConfig,
    cpu_quota,
    has_exact_int8_dot_products,
    resolve_providers,
    usable_cores,
)
from bench.common import sentences


@pytest.mark.parametrize(
    ("available", "expected"),
    [
        ([CPU], (CPU,)),
        ([CUDA, CPU], (CUDA, CPU)),
        ([TENSORRT, CUDA, CPU], (TENSORRT, CUDA, CPU)),
    ],
)
def test_auto_prefers_accelerators_and_always_ends_with_cpu(
    available: list[str], expected: tuple[str, ...]
) -> None:
    assert resolve_providers("auto", available) == expected


def test_cpu_is_always_available_in_this_onnxruntime() -> None:
    assert resolve_providers("cpu") == (CPU,)


def test_an_explicit_provider_that_is_unavailable_is_a_clear_error() -> None:
    with pytest.raises(ProviderUnavailable) as raised:
        resolve_providers("cuda", [CPU])

    assert str(raised.value) == (
        "ATTNSERVE_PROVIDERS=cuda needs CUDAExecutionProvider, which this ONNX Runtime does not "
        "offer (it offers CPUExecutionProvider). Install an onnxruntime build with it, "
        "or choose another provider."
    )


@pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="this ONNX Runtime has CUDA")
def test_cuda_is_refused_by_the_installed_cpu_onnxruntime() -> None:
    with pytest.raises(ProviderUnavailable, match="needs CUDAExecutionProvider"):
        resolve_providers("cuda")


def test_an_explicit_choice_refuses_a_session_that_fell_back_to_cpu() -> None:
    config = SessionConfig(providers=(CUDA, CPU), exact=True)

    with pytest.raises(ProviderUnavailable, match="Asked ONNX Runtime for CUDAExecutionProvider"):
        config.check_active([CPU])


def test_auto_reports_whichever_provider_the_session_runs_on() -> None:
    config = SessionConfig(providers=(CUDA, CPU), exact=False)

    assert config.check_active([CPU]) == CPU


SPINNING = "session.intra_op.allow_spinning"


@pytest.mark.parametrize(
    ("setting", "hint", "spins"),
    [(None, True, "1"), (None, False, "0"), (False, True, "0"), (True, False, "1")],
)
def test_threads_spin_as_the_model_hints_unless_the_setting_says(
    setting: bool | None, hint: bool, spins: str
) -> None:
    config = SessionConfig(providers=(CPU,), exact=True, spinning=setting)

    options = config.session_options(ServingHints(spinning=hint))

    assert options.get_session_config_entry(SPINNING) == spins


def test_the_shipped_encoder_spins_and_the_word_model_does_not(shipped_repository: Path) -> None:
    config = SessionConfig(providers=(CPU,), exact=True)

    sessions = {
        name: load_artifact(shipped_repository / name / "1", config).session
        for name in ("minilm-attention", "bilstm-additive")
    }

    spins = {
        name: s.get_session_options().get_session_config_entry(SPINNING)
        for name, s in sessions.items()
    }
    assert spins == {"minilm-attention": "1", "bilstm-additive": "0"}


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "200000 100000\n"}, 2.0),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu.max": "garbled\n"}, None),
        ({}, None),
    ],
)
def test_the_containers_cpu_limit_is_read_from_either_cgroup_version(
    tmp_path: Path, files: dict[str, str], quota: float | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)

    assert cpu_quota(tmp_path) == quota


def test_the_usable_cores_stay_within_the_cpu_limit_rounded_up(tmp_path: Path) -> None:
    affinity = usable_cores(tmp_path / "no-cgroup")
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    half_a_core = usable_cores(tmp_path)
    (tmp_path / "cpu.max").write_text(f"{100000 * (affinity + 3)} 100000\n")
    beyond_the_machine = usable_cores(tmp_path)

    assert (half_a_core, beyond_the_machine) == (1, affinity)


@pytest.mark.parametrize(
    ("per_core", "threads", "concurrency", "expected"),
    [
        (True, 0, None, Parallelism(batches_at_once=3, threads_per_batch=1)),
        (True, 2, None, Parallelism(batches_at_once=2, threads_per_batch=1)),
        (True, 0, 2, Parallelism(batches_at_once=2, threads_per_batch=0)),
        (True, 4, 1, Parallelism(batches_at_once=1, threads_per_batch=4)),
        (False, 0, None, Parallelism(batches_at_once=1, threads_per_batch=0)),
        (False, 2, 3, Parallelism(batches_at_once=3, threads_per_batch=2)),
    ],
)
def test_a_per_core_model_computes_one_thread_batches_unless_the_settings_say(
    per_core: bool, threads: int, concurrency: int | None, expected: Parallelism
) -> None:
    config = SessionConfig(
        providers=(CPU,),
        exact=True,
        intra_op_threads=threads,
        batch_concurrency=concurrency,
        cores=3,
    )
    hints = ServingHints(batch_per_core=per_core)

    assert config.parallelism(hints) == expected
    assert config.session_options(hints).intra_op_num_threads == expected.threads_per_batch


def test_a_per_core_model_computes_one_batch_at_a_time_on_an_accelerator() -> None:
    config = SessionConfig(providers=(CUDA, CPU), exact=True, cores=3)

    parallelism = config.parallelism(ServingHints(batch_per_core=True))

    assert parallelism == Parallelism(batches_at_once=1, threads_per_batch=0)


def test_the_shipped_encoder_computes_a_batch_per_core_and_the_word_model_one_batch(
    shipped_repository: Path,
) -> None:
    config = SessionConfig(providers=(CPU,), exact=True, cores=2)

    models = {
        name: load_artifact(shipped_repository / name / "1", config)
        for name in ("minilm-attention", "bilstm-additive")
    }

    assert {name: m.parallelism for name, m in models.items()} == {
        "minilm-attention": Parallelism(batches_at_once=2, threads_per_batch=1),
        "bilstm-additive": Parallelism(batches_at_once=1, threads_per_batch=0),
    }
    threads = {n: m.session.get_session_options().intra_op_num_threads for n, m in models.items()}
    assert threads == {"minilm-attention": 1, "bilstm-additive": 0}


UINT8_WEIGHTS = "session.x64quantprecision"


@pytest.mark.parametrize(
    ("cpuinfo", "exact"),
    [
        ("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni amx_int8\n", True),
        ("flags\t\t: fpu sse2 avx2 avx_vnni\n", True),
        # AVX-512 alone saturates like AVX2
        ("flags\t\t: fpu sse2 avx2 avx512f avx512bw\nbugs\t\t: avx_vnni\n", False),
        ("processor\t: 0\nFeatures\t: fp asimd asimddp\n", False),  # no x86 flags line
        (None, False),  # no /proc/cpuinfo
    ],
)
def test_vnni_is_read_from_the_cpu_flags(tmp_path: Path, cpuinfo: str | None, exact: bool) -> None:
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)

    assert has_exact_int8_dot_products(path) is exact


def test_int8_weights_are_widened_to_uint8_only_without_vnni() -> None:
    without = SessionConfig(providers=(CPU,), exact=True, exact_int8=False).session_options()
    with_vnni = SessionConfig(providers=(CPU,), exact=True, exact_int8=True).session_options()

    assert without.get_session_config_entry(UINT8_WEIGHTS) == "1"
    with pytest.raises(RuntimeError, match=UINT8_WEIGHTS):
        with_vnni.get_session_config_entry(UINT8_WEIGHTS)


def test_the_served_encoder_computes_the_bits_of_uint8_x_uint8_on_this_cpu(
    shipped_repository: Path,
) -> None:
    """Where this CPU has VNNI the service keeps the default kernels: they must add exactly."""
    served = load_artifact(
        shipped_repository / "minilm-attention" / "1", SessionConfig(providers=(CPU,), exact=True)
    )
    widening = SessionConfig(providers=(CPU,), exact=True, exact_int8=False)
    widened = widening.open_session(served.directory / MODEL_FILE)
    texts = sentences()[:48]

    for size in (1, 5, 16):
        for start in range(0, len(texts), size):
            encoded = [e for e in served.encoder.encode(texts[start : start + size]) if e.ids]
            feeds = served.encoder.pad(encoded).feeds()
            for ours, theirs in zip(
                served.session.run(None, feeds), widened.run(None, feeds), strict=True
            ):
                np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(
    ("providers", "fuse", "left_out"),
    [
        ((CPU,), None, (SKIP_LAYER_NORM_FUSION,)),
        ((CUDA, CPU), None, ()),
        ((CPU,), True, ()),
        ((TENSORRT, CUDA, CPU), False, (SKIP_LAYER_NORM_FUSION,)),
    ],
)
def test_skip_layer_norm_is_fused_on_accelerators_and_not_on_the_cpu_unless_set(
    providers: tuple[str, ...], fuse: bool | None, left_out: tuple[str, ...]
) -> None:
    config = SessionConfig(providers=providers, exact=True, fuse_skip_layer_norm=fuse)

    assert config.disabled_optimizers == left_out


def _optimized_operators(path: Path, config: SessionConfig, saved: Path) -> Counter[str]:
    options = config.session_options()
    options.optimized_model_filepath = str(saved)
    ort.InferenceSession(
        str(path), options, providers=[CPU], disabled_optimizers=list(config.disabled_optimizers)
    )
    return Counter(node.op_type for node in onnx.load(str(saved)).graph.node)


def test_the_encoder_computes_on_the_cpu_without_skip_layer_norm(
    shipped_repository: Path, tmp_path: Path
) -> None:
    """ONNX Runtime ignores an optimiser name it does not know: the fusion must really be gone."""
    path = shipped_repository / "minilm-attention" / "1" / MODEL_FILE
    served = SessionConfig(providers=(CPU,), exact=True)
    fused = SessionConfig(providers=(CPU,), exact=True, fuse_skip_layer_norm=True)

    served_operators = _optimized_operators(path, served, tmp_path / "served.onnx")
    fused_operators = _optimized_operators(path, fused, tmp_path / "fused.onnx")

    assert served_operators["SkipLayerNormalization"] == 0
    assert served_operators["LayerNormalization"] == 13
    assert fused_operators["SkipLayerNormalization"] == 12  # two a layer; the first stays plain
