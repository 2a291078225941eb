"""A tiny real training run: the files it writes, its record, and that it is reproducible."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from torch import nn

from attnserve.artifact.data import Columns, Example, load_sources, sha256_file, split_examples
from attnserve.artifact.tokenizer import TextEncoder
from attnserve.models.architectures import ARCHITECTURES, build_model
from attnserve.models.checkpoint import (
    CHECKPOINT_FILE,
    RECORD_FILE,
    TOKENIZER_FILE,
    RunRecord,
    load_checkpoint,
)
from attnserve.models.classifiers import SentimentClassifier
from attnserve.models.config import ModelConfig
from attnserve.models.training import (
    SPLIT_FRACTIONS,
    TrainConfig,
    accuracy,
    encode_examples,
    make_batch,
    parameter_groups,
    rdrop_loss,
    train,
    train_config_for,
)
from tests.three_class import LABEL_COLUMN, TEXT_COLUMN, write_three_class_csv
from tests.three_class import LABELS as THREE_LABELS

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "sentiment-labelled-sentences"
DATA = [DATA_DIR / "amazon_cells_labelled.txt", DATA_DIR / "yelp_labelled.txt"]
LIMIT = 150
LABELS = ["negative", "positive"]
CONFIG = TrainConfig(embedding_dim=16, hidden_dim=16, max_epochs=2, max_tokens=24, seed=3)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("run")
    train(DATA, path, CONFIG, limit_per_source=LIMIT, progress=False)
    return path


def test_run_directory_holds_checkpoint_tokenizer_and_record(run_dir: Path) -> None:
    assert {p.name for p in run_dir.iterdir()} == {CHECKPOINT_FILE, TOKENIZER_FILE, RECORD_FILE}
    record = RunRecord.model_validate_json((run_dir / RECORD_FILE).read_text("utf-8"))
    assert record.labels == LABELS
    assert record.max_tokens == 24
    examples = [e for path in DATA for e in load_sources([path]).examples[:LIMIT]]
    split = split_examples(examples, labels=LABELS, seed=CONFIG.split_seed)
    sides = {"train": split.train, "validation": split.validation, "test": split.test}
    assert record.class_balance == {
        name: {label: sum(e.label == label for e in side) for label in LABELS}
        for name, side in sides.items()
    }
    assert [sum(row) for row in record.test_confusion] == list(
        record.class_balance["test"].values()
    )
    correct = record.test_confusion[0][0] + record.test_confusion[1][1]
    assert correct / 30 == record.metrics["test_accuracy"]
    assert set(record.metrics) == {"train_accuracy", "validation_accuracy", "test_accuracy"}
    assert all(0.0 <= value <= 1.0 for value in record.metrics.values())
    training = record.training
    assert [(f.path, f.sha256) for f in training.data] == [
        (str(path), sha256_file(path)) for path in DATA
    ]
    assert training.split.seed == CONFIG.split_seed
    assert training.split.fractions == SPLIT_FRACTIONS
    assert training.split.sizes == {"train": 240, "validation": 30, "test": 30}
    assert training.seed == 3
    # unset options (None) are left out: a manifest's hyperparameters are plain values
    recorded = {key: value for key, value in asdict(CONFIG).items() if value is not None}
    assert training.hyperparameters == {**recorded, "limit_per_source": LIMIT}
    assert training.epochs_run == 2
    assert training.best_epoch in (1, 2)


def test_checkpoint_reloads_the_best_model(run_dir: Path) -> None:
    checkpoint = load_checkpoint(run_dir)
    assert isinstance(checkpoint.model, SentimentClassifier)
    assert not checkpoint.model.training
    assert checkpoint.config.architecture == "bilstm-additive"
    assert (checkpoint.config.embedding_dim, checkpoint.config.hidden_dim) == (16, 16)
    encoder = TextEncoder.from_file(checkpoint.tokenizer_path, checkpoint.record.max_tokens)
    assert checkpoint.config.vocab_size == encoder.vocab_size

    examples = [e for path in DATA for e in load_sources([path]).examples[:LIMIT]]
    split = split_examples(
        examples, labels=LABELS, seed=CONFIG.split_seed, fractions=SPLIT_FRACTIONS
    )
    for name, side in (("test", split.test), ("validation", split.validation)):
        reloaded = accuracy(checkpoint.model, encoder, encode_examples(encoder, side, LABELS))
        assert reloaded == checkpoint.record.metrics[f"{name}_accuracy"]


def test_tokenizer_saw_only_the_training_split(run_dir: Path) -> None:
    encoder = TextEncoder.from_file(run_dir / TOKENIZER_FILE, 128)
    examples = [e for path in DATA for e in load_sources([path]).examples[:LIMIT]]
    split = split_examples(examples, labels=LABELS, seed=CONFIG.split_seed)

    def ids(side: list[Example]) -> set[int]:
        return {i for item in encoder.encode([e.text for e in side]) for i in item.ids}

    assert encoder.unk_id not in ids(split.train)
    assert encoder.unk_id in ids(split.test)


def test_same_config_gives_identical_metrics_and_progress_shows_validation(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    again = train(DATA, tmp_path, CONFIG, limit_per_source=LIMIT, progress=True)
    first = RunRecord.model_validate_json((run_dir / RECORD_FILE).read_text("utf-8"))
    assert again.metrics == first.metrics
    assert again.training == first.training
    saved = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)["state_dict"]
    reference = torch.load(run_dir / CHECKPOINT_FILE, weights_only=True)["state_dict"]
    assert all(torch.equal(saved[name], reference[name]) for name in reference)
    assert "val_acc=" in capsys.readouterr().err


def test_text_without_tokens_is_an_error_or_skipped(run_dir: Path) -> None:
    encoder = TextEncoder.from_file(run_dir / TOKENIZER_FILE, 128)
    examples = [Example("good", "positive", "s"), Example(" \u3000 ", "negative", "s")]
    with pytest.raises(ValueError) as caught:
        encode_examples(encoder, examples, LABELS)
    assert str(caught.value) == (
        "1 example(s) have no tokens, e.g. ' \\u3000 ' from s; pass skip_bad to leave them out"
    )
    kept = encode_examples(encoder, examples, LABELS, skip_bad=True)
    assert kept.labels == [1]
    assert len(kept.encoded) == 1


def test_config_rejects_values_that_would_train_nothing() -> None:
    with pytest.raises(ValueError, match="max_epochs must be at least 1, got 0"):
        TrainConfig(max_epochs=0)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_trains_on_three_named_labels_under_other_columns(
    architecture: str, tmp_path: Path
) -> None:
    data = write_three_class_csv(tmp_path / "reviews.csv", per_label=8)
    config = train_config_for(
        architecture, max_epochs=1, batch_size=8, embedding_dim=8, hidden_dim=8, max_tokens=16
    )

    record = train(
        [data],
        tmp_path / "run",
        config,
        columns=Columns(text=TEXT_COLUMN, label=LABEL_COLUMN),
        progress=False,
    )

    assert record.labels == THREE_LABELS
    assert (record.training.text_column, record.training.label_column) == ("review", "sentiment")
    assert sum(record.class_balance["train"].values()) == record.training.split.sizes["train"]
    assert len(record.test_confusion) == 3
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint.config.num_labels == 3
    encoder = TextEncoder.from_file(checkpoint.tokenizer_path, record.max_tokens)
    batch = encoder.pad(encoder.encode(["Great phone", "Awful battery and broken screen"]))
    with torch.no_grad():
        probabilities, _ = checkpoint.model(
            torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask)
        )
    assert probabilities.shape == (2, 3)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(2))


class _Layered(nn.Module):
    """Parameters named as a pretrained encoder's are: embeddings, numbered layers, a head."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.ModuleDict(
            {
                "embeddings": nn.Linear(1, 1),
                "layer": nn.ModuleList([nn.Linear(1, 1), nn.Linear(1, 1)]),
            }
        )
        self.head = nn.Linear(1, 1)


def test_layer_wise_decay_lowers_each_encoder_layer_below_the_top() -> None:
    model = _Layered()
    config = TrainConfig(learning_rate=1e-3, encoder_learning_rate=1e-4, layer_decay=0.5)

    groups = parameter_groups(model, config)  # type: ignore[arg-type]

    rate_of = {id(p): group["lr"] for group in groups for p in group["params"]}
    named = dict(model.named_parameters())
    assert rate_of[id(named["encoder.layer.1.weight"])] == pytest.approx(1e-4)
    assert rate_of[id(named["encoder.layer.0.weight"])] == pytest.approx(5e-5)
    assert rate_of[id(named["encoder.embeddings.weight"])] == pytest.approx(2.5e-5)
    assert rate_of[id(named["head.weight"])] == pytest.approx(1e-3)
    assert len(rate_of) == len(named)


def test_rdrop_adds_the_divergence_between_two_dropout_passes(run_dir: Path) -> None:
    encoder = TextEncoder.from_file(run_dir / TOKENIZER_FILE, 24)
    examples = [Example("great phone", "positive", "s"), Example("awful battery", "negative", "s")]
    data = encode_examples(encoder, examples, LABELS)
    batch = make_batch(encoder, data, [0, 1])

    def model(dropout: float) -> SentimentClassifier:
        torch.manual_seed(0)
        config = ModelConfig(
            architecture="bilstm-additive",
            vocab_size=encoder.vocab_size,
            pad_token_id=encoder.pad_id,
            embedding_dim=8,
            hidden_dim=8,
            dropout=dropout,
        )
        return build_model(config).train()

    # Without dropout both copies agree: the loss is the plain cross-entropy.
    without = model(0.0)
    logits, loss = rdrop_loss(without, batch, alpha=1.0)
    plain, _ = without.forward_logits(batch.input_ids, batch.attention_mask)
    torch.testing.assert_close(logits, plain)
    torch.testing.assert_close(loss, nn.functional.cross_entropy(plain, batch.labels))

    # With dropout the copies differ, and alpha scales what their divergence adds.
    torch.manual_seed(1)
    _, cross_entropy_only = rdrop_loss(model(0.5), batch, alpha=0.0)
    torch.manual_seed(1)
    _, with_divergence = rdrop_loss(model(0.5), batch, alpha=10.0)
    assert with_divergence > cross_entropy_only
