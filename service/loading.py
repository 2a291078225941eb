"""Loads a model directory and checks it against its manifest: a broken one fails at startup."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from attnserve.artifact.graph import HEADS_OUTPUT, INPUT_NAMES, OUTPUT_NAMES
from attnserve.artifact.manifest import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    Manifest,
)
from attnserve.artifact.tokenizer import TextEncoder
from attnserve.service.errors import ArtifactError
from attnserve.service.inference import SessionRunner
from attnserve.service.onnxruntime_env import onnxruntime as ort
from attnserve.service.providers import Parallelism, SessionConfig

# ONNX Runtime's names for the element types a manifest may declare.
_ORT_TYPES = {"tensor(int64)": "int64", "tensor(float)": "float32"}


@dataclass(frozen=True)
class LoadedModel:
    """A verified model: its manifest, its encoder, and an open session."""

    directory: Path
    manifest: Manifest
    encoder: TextEncoder
    session: ort.InferenceSession
    provider: str
    parallelism: Parallelism


def load_artifact(model_dir: Path, config: SessionConfig) -> LoadedModel:
    """Reads and verifies `model_dir`; every mismatch is an ArtifactError naming its figures."""
    manifest = _read_manifest(model_dir)
    _check_files(model_dir, manifest)
    try:
        encoder = TextEncoder.from_file(model_dir / TOKENIZER_FILE, manifest.max_tokens)
    except Exception as exc:
        raise ArtifactError(f"{model_dir}: cannot read {TOKENIZER_FILE}: {exc}") from exc
    if (encoder.pad_id, encoder.unk_id) != (manifest.pad_token_id, manifest.unk_token_id):
        raise ArtifactError(
            f"{model_dir}: {TOKENIZER_FILE} has pad/unk ids {encoder.pad_id}/{encoder.unk_id}, "
            f"the manifest says {manifest.pad_token_id}/{manifest.unk_token_id}"
        )
    if encoder.tokenization != manifest.tokenization:
        raise ArtifactError(
            f"{model_dir}: {TOKENIZER_FILE} splits text into {encoder.tokenization}, "
            f"the manifest says {manifest.tokenization}"
        )
    if encoder.special_tokens != manifest.special_tokens:
        raise ArtifactError(
            f"{model_dir}: {TOKENIZER_FILE} adds special tokens {encoder.special_tokens}, "
            f"the manifest says {manifest.special_tokens}"
        )
    try:
        session = config.open_session(model_dir / MODEL_FILE, manifest.serving)
    except Exception as exc:
        raise ArtifactError(f"{model_dir}: ONNX Runtime cannot open {MODEL_FILE}: {exc}") from exc
    provider = config.check_active(session.get_providers())
    _check_graph(model_dir, manifest, session)
    _check_runs(model_dir, manifest, encoder, session)
    return LoadedModel(
        model_dir, manifest, encoder, session, provider, config.parallelism(manifest.serving)
    )


def _read_manifest(model_dir: Path) -> Manifest:
    if not (model_dir / MANIFEST_FILE).is_file():
        raise ArtifactError(f"{model_dir}: {MANIFEST_FILE} is missing")
    try:
        manifest = Manifest.read(model_dir)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'manifest'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ArtifactError(f"{model_dir}: {MANIFEST_FILE} is invalid: {problems}") from exc
    if manifest.format_version != FORMAT_VERSION:
        raise ArtifactError(
            f"{model_dir}: manifest format_version is {manifest.format_version}, "
            f"this service reads {FORMAT_VERSION}"
        )
    return manifest


def _check_files(model_dir: Path, manifest: Manifest) -> None:
    unlisted = [name for name in (MODEL_FILE, TOKENIZER_FILE) if name not in manifest.files]
    if unlisted:
        raise ArtifactError(f"{model_dir}: manifest lists no hash for {', '.join(unlisted)}")
    for name, expected in manifest.files.items():
        path = model_dir / name
        if not path.is_file():
            raise ArtifactError(f"{model_dir}: {name} is missing")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != expected:
            raise ArtifactError(
                f"{model_dir}: {name} has sha256 {actual}, the manifest says {expected}"
            )


def _check_graph(model_dir: Path, manifest: Manifest, session: ort.InferenceSession) -> None:
    """The graph's and the manifest's inputs and outputs agree, and are what we feed and read."""
    problems = []
    for kind, declared, graph, served in (
        ("inputs", manifest.inputs, session.get_inputs(), INPUT_NAMES),
        ("outputs", manifest.outputs, session.get_outputs(), OUTPUT_NAMES),
    ):
        found = [(node.name, _ORT_TYPES.get(node.type, node.type)) for node in graph]
        if found != [(spec.name, spec.dtype) for spec in declared]:
            problems.append(
                f"graph {kind} are {_describe(found)}, manifest says "
                f"{_describe([(spec.name, spec.dtype) for spec in declared])}"
            )
        names = tuple(spec.name for spec in declared)
        # outputs may add the optional heads output; the service reads it only when asked
        if names != served and (kind == "inputs" or names != (*served, HEADS_OUTPUT)):
            problems.append(
                f"manifest {kind} are named {list(names)}, the service needs {list(served)}"
            )
    if problems:
        raise ArtifactError(f"{model_dir}: " + "; ".join(problems))


def _check_runs(
    model_dir: Path, manifest: Manifest, encoder: TextEncoder, session: ort.InferenceSession
) -> None:
    """One tiny batch through the graph, so that a model that cannot run fails now."""
    batch = encoder.pad(encoder.encode(["ok"]))
    try:
        output = SessionRunner(session).compute(batch)
    except Exception as exc:
        raise ArtifactError(f"{model_dir}: the model fails on a one-text batch: {exc}") from exc
    for name, shape, expected in (
        ("probabilities", output.probabilities.shape, (1, len(manifest.labels))),
        ("attention", output.attention.shape, batch.input_ids.shape),
    ):
        if shape != expected:
            raise ArtifactError(
                f"{model_dir}: {name} has shape {shape} on a one-text batch of "
                f"{batch.input_ids.shape[1]} tokens, expected {expected} "
                f"({len(manifest.labels)} labels)"
            )


def _describe(specs: list[tuple[str, str]]) -> str:
    return ", ".join(f"{name}:{dtype}" for name, dtype in specs)
