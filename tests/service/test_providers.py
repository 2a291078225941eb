"""Execution-provider resolution: auto picks the best available; an explicit choice is exact."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest

from attnserve.service.errors import ProviderUnavailable
from attnserve.service.loading import load_artifact
from attnserve.service.providers import CPU, CUDA, TENSORRT, SessionConfig, resolve_providers


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

    options = config.session_options(spinning_hint=hint)

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
