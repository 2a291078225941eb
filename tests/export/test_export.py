"""Export real runs of each architecture, then check the artifact against PyTorch and itself."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from attnserve.artifact.data import DataSplit, load_sources, split_examples
from attnserve.artifact.graph import INPUT_NAMES, OUTPUT_NAMES
from attnserve.artifact.manifest import (
    MANIFEST_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    DataFile,
    Manifest,
    SplitRecord,
    TrainingRecord,
)
from attnserve.artifact.tokenizer import TextEncoder
from attnserve.export.onnx_export import export_run
from attnserve.export.optimize import describe
from attnserve.export.parity import ParityError, check_parity, parity_batches
from attnserve.models.architectures import ARCHITECTURES, build_model
from attnserve.models.checkpoint import Checkpoint, RunRecord, load_checkpoint, save_checkpoint
from attnserve.models.config import ModelConfig
from attnserve.models.vocabulary import train_tokenizer
from attnserve.service.loading import load_artifact
from attnserve.service.providers import CPU, SessionConfig

ROOT = Path(__file__).resolve().parents[2]
DATA = [
    ROOT / "data/sentiment-labelled-sentences/amazon_cells_labelled.txt",
    ROOT / "data/sentiment-labelled-sentences/yelp_labelled.txt",
]
SPLIT_SEED = 13
MAX_TOKENS = 96
TOLERANCE = 1e-4
EXAMPLE_SHAPE = (2, 5)


@dataclass(frozen=True)
class Exported:
    run_dir: Path
    model_dir: Path


# the ones trained from scratch; a pretrained encoder's export is checked end to end in
# tests/test_minilm_end_to_end.py, with its own tokenizer
ARCHITECTURE_NAMES = sorted(
    name for name, info in ARCHITECTURES.items() if info.pretrained_tokenizer is None
)


@pytest.fixture(scope="module")
def split() -> DataSplit:
    return split_examples(
        load_sources(DATA).examples, labels=["negative", "positive"], seed=SPLIT_SEED
    )


@pytest.fixture(scope="module")
def sentences(split: DataSplit) -> list[str]:
    return [example.text for example in split.test[:120]]


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("repository")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, split: DataSplit) -> dict[str, Path]:
    """One random-init run directory per architecture, as `train` would write it."""
    tokenizer = train_tokenizer(example.text for example in split.train)
    record = RunRecord(
        labels=["negative", "positive"],
        max_tokens=MAX_TOKENS,
        metrics={"validation_accuracy": 0.5},
        training=TrainingRecord(
            data=[DataFile(path=str(path), sha256=_sha256(path)) for path in DATA],
            split=SplitRecord(
                seed=SPLIT_SEED,
                fractions=(0.8, 0.1, 0.1),
                sizes={
                    "train": len(split.train),
                    "validation": len(split.validation),
                    "test": len(split.test),
                },
            ),
            seed=0,
            hyperparameters={"hidden_dim": 16},
            epochs_run=0,
            best_epoch=0,
        ),
    )
    runs = {}
    for architecture in ARCHITECTURE_NAMES:
        run_dir = tmp_path_factory.mktemp(architecture)
        tokenizer.save(str(run_dir / TOKENIZER_FILE))
        torch.manual_seed(0)
        config = ModelConfig(
            architecture,
            vocab_size=tokenizer.get_vocab_size(),
            pad_token_id=0,
            embedding_dim=16,
            hidden_dim=16,
        )
        save_checkpoint(run_dir, build_model(config), config, record)
        runs[architecture] = run_dir
    return runs


@pytest.fixture(scope="module")
def exports(runs: dict[str, Path], repository: Path, sentences: list[str]) -> dict[str, Exported]:
    return {
        architecture: Exported(
            run_dir,
            export_run(run_dir, repository, name=architecture, parity_sentences=sentences),
        )
        for architecture, run_dir in runs.items()
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _encoder(checkpoint: Checkpoint) -> TextEncoder:
    return TextEncoder.from_file(checkpoint.tokenizer_path, checkpoint.record.max_tokens)


def _session(model_dir: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(model_dir / MODEL_FILE), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("architecture", ARCHITECTURE_NAMES)
def test_parity_holds_at_shapes_unlike_the_example(
    exports: dict[str, Exported], split: DataSplit, architecture: str
) -> None:
    parity = Manifest.read(exports[architecture].model_dir).parity
    encoder = _encoder(load_checkpoint(exports[architecture].run_dir))
    longest_sentence = max(
        len(item.ids) for item in encoder.encode([example.text for example in split.train])
    )

    outputs = [spec.name for spec in Manifest.read(exports[architecture].model_dir).outputs]
    assert parity.tolerance == TOLERANCE
    assert list(parity.max_abs_diff) == outputs
    assert all(diff <= TOLERANCE for diff in parity.max_abs_diff.values()), parity.max_abs_diff
    assert [batch for batch, _ in parity.shapes] == [1, 3, 8, 17, 4]
    assert EXAMPLE_SHAPE not in parity.shapes
    assert len({length for _, length in parity.shapes}) >= 4
    assert max(length for _, length in parity.shapes) == MAX_TOKENS > longest_sentence


@pytest.mark.parametrize("architecture", ARCHITECTURE_NAMES)
def test_manifest_matches_the_files_and_the_run(
    exports: dict[str, Exported], architecture: str
) -> None:
    model_dir, run_dir = exports[architecture].model_dir, exports[architecture].run_dir
    manifest = Manifest.read(model_dir)
    checkpoint = load_checkpoint(run_dir)
    graph = onnx.load(str(model_dir / MODEL_FILE))

    assert sorted(path.name for path in model_dir.iterdir()) == [
        "manifest.json",
        MODEL_FILE,
        TOKENIZER_FILE,
    ]
    assert manifest.files == {
        MODEL_FILE: _sha256(model_dir / MODEL_FILE),
        TOKENIZER_FILE: _sha256(model_dir / TOKENIZER_FILE),
    }
    assert (model_dir / TOKENIZER_FILE).read_bytes() == checkpoint.tokenizer_path.read_bytes()
    assert (manifest.name, manifest.version) == (architecture, "1")
    assert manifest.architecture == architecture
    assert manifest.description == ARCHITECTURES[architecture].description
    assert manifest.has_attention == ARCHITECTURES[architecture].has_attention
    assert manifest.labels == checkpoint.record.labels
    assert manifest.max_tokens == MAX_TOKENS
    assert manifest.training == checkpoint.record.training
    assert manifest.metrics == checkpoint.record.metrics
    assert (manifest.pad_token_id, manifest.unk_token_id) == (0, 1)
    assert [opset.version for opset in graph.opset_import if opset.domain == ""] == [manifest.opset]
    assert set(manifest.libraries) == {"torch", "onnx", "onnxruntime", "tokenizers"}


@pytest.mark.parametrize("architecture", ARCHITECTURE_NAMES)
def test_graph_interface_is_the_declared_one(
    exports: dict[str, Exported], architecture: str
) -> None:
    manifest = Manifest.read(exports[architecture].model_dir)
    session = _session(exports[architecture].model_dir)

    assert [(node.name, node.shape) for node in session.get_inputs()] == [
        (spec.name, spec.shape) for spec in manifest.inputs
    ]
    assert [(node.name, node.shape) for node in session.get_outputs()] == [
        (spec.name, spec.shape) for spec in manifest.outputs
    ]
    assert tuple(spec.name for spec in manifest.inputs) == INPUT_NAMES
    heads = [("heads", "float32", ["batch", 2, 4, "sequence", "sequence"])]
    assert [(spec.name, spec.dtype, spec.shape) for spec in manifest.outputs] == [
        ("probabilities", "float32", ["batch", 2]),
        ("attention", "float32", ["batch", "sequence"]),
        *(heads if ARCHITECTURES[architecture].has_heads else []),
    ]


@pytest.mark.parametrize("architecture", ARCHITECTURE_NAMES)
def test_faithfulness_is_measured_on_the_sentences(
    exports: dict[str, Exported], sentences: list[str], architecture: str
) -> None:
    faithfulness = Manifest.read(exports[architecture].model_dir).faithfulness

    assert faithfulness is not None
    assert faithfulness.ks == [1, 2, 3, 4, 5]
    assert faithfulness.sentences == len(sentences)
    rankings = {"random", "gradient_x_input"}
    if ARCHITECTURES[architecture].has_attention:
        rankings.add("attention")
    assert set(faithfulness.aopc) == rankings
    assert all(-1.0 <= value <= 1.0 for value in faithfulness.aopc.values())
    assert f"{faithfulness.aopc['random']:.3f}" in faithfulness.summary


@pytest.mark.parametrize("architecture", ARCHITECTURE_NAMES)
def test_onnx_runs_at_a_new_batch_and_length(
    exports: dict[str, Exported], split: DataSplit, architecture: str
) -> None:
    checkpoint = load_checkpoint(exports[architecture].run_dir)
    encoder = _encoder(checkpoint)
    texts = [example.text for example in split.validation[:5]]
    batch = encoder.pad(encoder.encode(texts))
    session = _session(exports[architecture].model_dir)

    probabilities, attention = session.run(
        list(OUTPUT_NAMES),
        batch.feeds(),
    )

    assert probabilities.shape == (5, 2) and probabilities.dtype == np.float32
    assert attention.shape == batch.input_ids.shape and attention.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert np.all(attention[batch.attention_mask == 0] == 0.0)
    expected_mass = 1.0 if ARCHITECTURES[architecture].has_attention else 0.0
    np.testing.assert_allclose(attention.sum(axis=1), expected_mass, atol=1e-6)


def test_exported_bilstm_runs_at_lengths_other_than_the_example(
    exports: dict[str, Exported],
) -> None:
    """The dynamo exporter would bake the example's length (5) into the bilstm's graph."""
    checkpoint = load_checkpoint(exports["bilstm-additive"].run_dir)
    session = _session(exports["bilstm-additive"].model_dir)
    generator = torch.Generator().manual_seed(0)

    for length in (1, 2, 9, 40, MAX_TOKENS):
        input_ids = torch.randint(2, 100, (3, length), generator=generator)
        attention_mask = torch.ones_like(input_ids)
        attention_mask[1, length // 2 + 1 :] = 0
        input_ids[attention_mask == 0] = 0
        with torch.no_grad():
            expected = checkpoint.model(input_ids, attention_mask)
        actual = session.run(
            list(OUTPUT_NAMES),
            {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()},
        )
        for torch_output, onnx_output in zip(expected, actual, strict=True):
            np.testing.assert_allclose(onnx_output, torch_output.numpy(), atol=TOLERANCE, rtol=0)


def test_parity_failure_reports_every_output_and_shape(
    exports: dict[str, Exported], sentences: list[str]
) -> None:
    exported = exports["bilstm-additive"]
    checkpoint = load_checkpoint(exported.run_dir)
    with torch.no_grad():
        for parameter in checkpoint.model.parameters():
            parameter.add_(0.05)
    checked_shapes = Manifest.read(exported.model_dir).parity.shapes

    with pytest.raises(ParityError) as raised:
        check_parity(
            checkpoint.model, exported.model_dir / MODEL_FILE, _encoder(checkpoint), sentences
        )

    mismatches = raised.value.mismatches
    assert {(m.output, m.batch_shape) for m in mismatches} == {
        (name, shape) for name in OUTPUT_NAMES for shape in checked_shapes
    }
    assert all(m.max_abs_diff > TOLERANCE for m in mismatches)
    message = str(raised.value)
    for mismatch in mismatches:
        assert mismatch.describe() in message
    assert f"max |torch - onnx| = {mismatches[0].max_abs_diff:.3e}" in message
    assert "tolerance 1.0e-04" in message and "torch shape (17, 2)" in message


def test_failed_export_leaves_nothing_behind(
    runs: dict[str, Path], exports: dict[str, Exported], repository: Path, tmp_path: Path
) -> None:
    before = sorted(repository.rglob("*"))
    fresh = tmp_path / "fresh-repository"

    for target in (repository, fresh):
        with pytest.raises(ValueError, match="at least one sentence"):
            export_run(runs["lstm"], target, name="broken", parity_sentences=["   ", ""])

    assert sorted(repository.rglob("*")) == before
    assert not fresh.exists()


def test_existing_version_is_replaced_only_on_request(
    runs: dict[str, Path], repository: Path, split: DataSplit
) -> None:
    """Also exports with the default parity sentences: the run's rebuilt test split."""
    model_dir = export_run(runs["lstm"], repository, name="replaced")
    marker = model_dir / "marker"
    marker.write_text("old version")

    with pytest.raises(FileExistsError):
        export_run(runs["lstm"], repository, name="replaced")
    assert marker.exists()

    assert export_run(runs["lstm"], repository, name="replaced", overwrite=True) == model_dir
    assert not marker.exists()
    assert Manifest.read(model_dir).files[MODEL_FILE] == _sha256(model_dir / MODEL_FILE)
    assert not [path for path in repository.iterdir() if path.name.startswith(".")]
    encoder = _encoder(load_checkpoint(runs["lstm"]))
    test_batches = parity_batches(encoder, [example.text for example in split.test])
    assert Manifest.read(model_dir).parity.shapes == [
        batch.input_ids.shape for batch in test_batches
    ]


@pytest.mark.parametrize("architecture", ARCHITECTURE_NAMES)
def test_an_optimised_export_is_parity_checked_recorded_and_served(
    runs: dict[str, Path],
    exports: dict[str, Exported],
    repository: Path,
    sentences: list[str],
    architecture: str,
) -> None:
    model_dir = export_run(
        runs[architecture],
        repository,
        name=f"{architecture}-optimised",
        parity_sentences=sentences,
        optimize="extended",
    )

    manifest = Manifest.read(model_dir)
    plain_manifest = Manifest.read(exports[architecture].model_dir)
    # the exact GELU's fusion (export/gelu.py) follows ONNX Runtime's, where a graph has one
    fusions = [describe("extended"), plain_manifest.graph_optimization]
    assert manifest.graph_optimization == "; ".join(filter(None, fusions))
    assert manifest.parity.max_abs_diff and max(manifest.parity.max_abs_diff.values()) <= 1e-4
    assert sorted(path.name for path in model_dir.iterdir()) == [
        MANIFEST_FILE,
        MODEL_FILE,
        TOKENIZER_FILE,
    ]
    plain = onnx.load(exports[architecture].model_dir / MODEL_FILE)
    assert len(onnx.load(model_dir / MODEL_FILE).graph.node) < len(plain.graph.node)
    # The service verifies and opens it like any other artifact.
    loaded = load_artifact(model_dir, SessionConfig(providers=(CPU,), exact=True))
    assert loaded.manifest == manifest
