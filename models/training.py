"""Trains a sentiment classifier and writes a run directory; `attnserve train` calls `train`.

    attnserve train --run-dir runs/bilstm-additive

The labels are the names found in the data, N >= 2 of them (artifact/data.py), in numeric or
alphabetical order or the order given; the data is split with `split_seed`, each (source,
label)'s share kept on every side; the tokenizer is trained on the training split only; the
model is trained with AdamW, dropout and early stopping on validation accuracy, and the best
epoch's weights are kept. The run directory (models/checkpoint.py) is what `attnserve export`
turns into a served model.
"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from tokenizers import Tokenizer
from torch import nn
from tqdm import tqdm

from attnserve.artifact.data import (
    DEFAULT_COLUMNS,
    Columns,
    Example,
    first_per_source,
    label_ids,
    label_names,
    load_sources,
    sha256_file,
    split_examples,
)
from attnserve.artifact.manifest import DataFile, SplitRecord, TrainingRecord
from attnserve.artifact.scores import Scores
from attnserve.artifact.tokenizer import EncodedText, TextEncoder
from attnserve.models.architectures import ARCHITECTURES, build_model
from attnserve.models.checkpoint import TOKENIZER_FILE, RunRecord, save_checkpoint
from attnserve.models.classifiers import SentimentClassifier
from attnserve.models.config import ModelConfig
from attnserve.models.vocabulary import train_tokenizer

SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
EVAL_BATCH_SIZE = 256

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run's outcome; saved as the run's hyperparameters."""

    architecture: str = "bilstm-additive"
    embedding_dim: int = 64
    hidden_dim: int = 64
    dropout: float = 0.3
    learning_rate: float = 3e-3
    # a pretrained encoder's parameters (named encoder.*) learn at this rate; None: learning_rate
    encoder_learning_rate: float | None = None
    # layer-wise decay of encoder_learning_rate: the top encoder layer learns at it, each
    # layer below at `layer_decay` times the one above, the embeddings last (1: no decay)
    layer_decay: float = 1.0
    # constant, or linear warm-up over warmup_fraction of all steps then linear decay to 0
    schedule: Literal["constant", "linear"] = "constant"
    warmup_fraction: float = 0.0
    weight_decay: float = 1e-2
    # R-Drop (Liang et al., 2021): each batch runs twice, under independent dropout, and the
    # loss adds this times the symmetric KL divergence between the two predictions (0: off)
    rdrop_alpha: float = 0.0
    batch_size: int = 32
    max_epochs: int = 30
    patience: int = 8
    seed: int = 13
    split_seed: int = 13
    vocab_size: int = 8000
    min_frequency: int = 1
    max_tokens: int = 128

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_epochs", "patience", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


def train_config_for(architecture: str, **overrides: Any) -> TrainConfig:
    """The architecture's own defaults (a pretrained encoder's are not an LSTM's), overridden."""
    if architecture not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {architecture!r}; known: {known}")
    defaults = ARCHITECTURES[architecture].training_defaults
    return TrainConfig(architecture=architecture, **{**defaults, **overrides})


def _check_max_tokens(config: TrainConfig) -> None:
    limit = ARCHITECTURES[config.architecture].max_positions
    if limit is not None and config.max_tokens > limit:
        raise ValueError(
            f"{config.architecture} reads at most {limit} tokens, not {config.max_tokens}"
        )


@dataclass(frozen=True)
class EncodedExamples:
    """One side of the split, tokenised once; each batch is padded to its own longest text."""

    encoded: list[EncodedText]
    labels: list[int]


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor  # (B, T) int64
    attention_mask: torch.Tensor  # (B, T) int64
    labels: torch.Tensor  # (B,) int64


@dataclass(frozen=True)
class FitResult:
    """The best epoch's weights and when training found and stopped."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    epochs_run: int


def train(
    data_paths: Sequence[Path],
    run_dir: Path,
    config: TrainConfig,
    *,
    columns: Columns = DEFAULT_COLUMNS,
    label_order: Sequence[str] | None = None,
    skip_bad: bool = False,
    limit_per_source: int | None = None,
    progress: bool = True,
) -> RunRecord:
    """Trains on `data_paths` (read through `columns`; labels in `label_order`, default
    `label_names`'s) and writes checkpoint, tokenizer and record to `run_dir`."""
    _check_max_tokens(config)
    loaded = load_sources(data_paths, columns=columns, skip_bad=skip_bad)
    for skipped in loaded.skipped:
        logger.warning("skipped %s:%d: %s", skipped.path, skipped.line_number, skipped.reason)
    examples = first_per_source(loaded.examples, limit_per_source)
    labels = label_names(examples, label_order)
    split = split_examples(
        examples, labels=labels, seed=config.split_seed, fractions=SPLIT_FRACTIONS
    )
    if not split.validation or not split.test:
        raise ValueError(
            f"{len(examples)} examples are too few: the 80/10/10 split leaves the validation "
            "or test side empty (give each label at least ten examples)"
        )

    pretrained = ARCHITECTURES[config.architecture].pretrained_tokenizer
    tokenizer = (
        Tokenizer.from_file(str(pretrained()))
        if pretrained is not None
        else train_tokenizer(
            (example.text for example in split.train),
            vocab_size=config.vocab_size,
            min_frequency=config.min_frequency,
        )
    )
    # the run's tokenizer.json is what the service reads: no padding or truncation of its own
    tokenizer.no_padding()
    tokenizer.no_truncation()
    run_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(run_dir / TOKENIZER_FILE))
    encoder = TextEncoder(tokenizer, config.max_tokens)
    train_set, validation_set, test_set = (
        encode_examples(encoder, side, labels, skip_bad=skip_bad)
        for side in (split.train, split.validation, split.test)
    )

    torch.manual_seed(config.seed)
    model_config = ModelConfig(
        architecture=config.architecture,
        vocab_size=encoder.vocab_size,
        pad_token_id=encoder.pad_id,
        num_labels=len(labels),
        embedding_dim=config.embedding_dim,
        hidden_dim=config.hidden_dim,
        dropout=config.dropout,
        special_token_ids=tuple(encoder.special_token_ids),
    )
    model = build_model(model_config)
    fitted = fit(model, encoder, train_set, validation_set, config, progress=progress)
    model.load_state_dict(fitted.best_state)

    sides = {"train": train_set, "validation": validation_set, "test": test_set}
    scores = {
        name: Scores.of(data.labels, predicted_ids(model, encoder, data), len(labels))
        for name, data in sides.items()
    }
    metrics = {f"{name}_accuracy": side.accuracy for name, side in scores.items()}
    hyperparameters: dict[str, float | int | str | bool] = {
        key: value for key, value in asdict(config).items() if value is not None
    }
    if limit_per_source is not None:
        # `evaluate` must apply the same cut to rebuild this run's test set.
        hyperparameters["limit_per_source"] = limit_per_source
    record = RunRecord(
        labels=labels,
        max_tokens=config.max_tokens,
        metrics=metrics,
        class_balance={
            name: dict(zip(labels, side.support, strict=True)) for name, side in scores.items()
        },
        test_confusion=scores["test"].confusion,
        training=TrainingRecord(
            data=[DataFile(path=str(path), sha256=sha256_file(path)) for path in data_paths],
            text_column=columns.text,
            label_column=columns.label,
            split=SplitRecord(
                seed=config.split_seed,
                fractions=SPLIT_FRACTIONS,
                sizes={
                    "train": len(split.train),
                    "validation": len(split.validation),
                    "test": len(split.test),
                },
            ),
            seed=config.seed,
            hyperparameters=hyperparameters,
            epochs_run=fitted.epochs_run,
            best_epoch=fitted.best_epoch,
        ),
    )
    save_checkpoint(run_dir, model, model_config, record)
    return record


def encode_examples(
    encoder: TextEncoder,
    examples: Sequence[Example],
    labels: Sequence[str],
    *,
    skip_bad: bool = False,
) -> EncodedExamples:
    """Tokenises examples and gives each its label's id in `labels`; one with no tokens is an
    error, or dropped (logged) with skip_bad."""
    encoded = encoder.encode([example.text for example in examples])
    empty = [example for example, item in zip(examples, encoded, strict=True) if not item.ids]
    if empty and not skip_bad:
        raise ValueError(
            f"{len(empty)} example(s) have no tokens, e.g. {empty[0].text!r} "
            f"from {empty[0].source}; pass skip_bad to leave them out"
        )
    if empty:
        logger.warning("left out %d example(s) with no tokens", len(empty))
    kept = [
        (item, label)
        for label, item in zip(label_ids(examples, labels), encoded, strict=True)
        if item.ids
    ]
    return EncodedExamples(encoded=[item for item, _ in kept], labels=[label for _, label in kept])


def make_batch(encoder: TextEncoder, data: EncodedExamples, indices: Sequence[int]) -> Batch:
    """The examples at `indices`, padded once through the shared TextEncoder."""
    padded = encoder.pad([data.encoded[i] for i in indices])
    return Batch(
        input_ids=torch.from_numpy(padded.input_ids),
        attention_mask=torch.from_numpy(padded.attention_mask),
        labels=torch.tensor([data.labels[i] for i in indices], dtype=torch.int64),
    )


def fit(
    model: SentimentClassifier,
    encoder: TextEncoder,
    train_set: EncodedExamples,
    validation_set: EncodedExamples,
    config: TrainConfig,
    *,
    progress: bool = True,
) -> FitResult:
    """AdamW on cross-entropy, stopping `patience` epochs after the best validation accuracy."""
    optimizer = torch.optim.AdamW(parameter_groups(model, config), weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(train_set.labels) // config.batch_size)
    scheduler = learning_rate_schedule(optimizer, config, steps_per_epoch * config.max_epochs)
    generator = torch.Generator().manual_seed(config.seed)
    best_accuracy, best_epoch = -1.0, 0
    best_state = copy.deepcopy(model.state_dict())
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        order = torch.randperm(len(train_set.labels), generator=generator).tolist()
        size = config.batch_size
        batches = [order[i : i + size] for i in range(0, len(order), size)]
        # Driven by hand, not iterated: iterating closes the bar before val_acc can be shown.
        bar = tqdm(
            total=len(batches),
            desc=f"epoch {epoch}/{config.max_epochs}",
            disable=not progress,
            unit="batch",
        )
        loss, train_accuracy = train_epoch(
            model, encoder, train_set, batches, optimizer, scheduler, bar, config.rdrop_alpha
        )
        validation_accuracy = accuracy(model, encoder, validation_set)
        bar.set_postfix(
            loss=f"{loss:.4f}", acc=f"{train_accuracy:.3f}", val_acc=f"{validation_accuracy:.3f}"
        )
        bar.close()
        logger.info(
            "epoch %d: loss %.4f, train accuracy %.4f, validation accuracy %.4f",
            epoch,
            loss,
            train_accuracy,
            validation_accuracy,
        )
        if validation_accuracy > best_accuracy:
            best_accuracy, best_epoch = validation_accuracy, epoch
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    return FitResult(best_state=best_state, best_epoch=best_epoch, epochs_run=epoch)


def parameter_groups(model: SentimentClassifier, config: TrainConfig) -> list[dict[str, Any]]:
    """The pretrained encoder's parameters at encoder_learning_rate (decayed layer by layer
    downwards with layer_decay), the rest at learning_rate."""
    encoder_rate = config.encoder_learning_rate or config.learning_rate
    named = list(model.named_parameters())
    encoder_named = [(n, p) for n, p in named if n.startswith("encoder.")]
    depths = [_encoder_depth(name) for name, _ in encoder_named]
    top = max((depth for depth in depths if depth is not None), default=-1)
    rates: dict[float, list[torch.nn.Parameter]] = {}
    for (_, parameter), depth in zip(encoder_named, depths, strict=True):
        # embeddings (and anything below layer 0) sit one step under the first layer
        steps = top - depth if depth is not None else top + 1
        rates.setdefault(encoder_rate * config.layer_decay**steps, []).append(parameter)
    groups = [{"params": params, "lr": rate} for rate, params in rates.items()]
    groups.append(
        {
            "params": [p for n, p in named if not n.startswith("encoder.")],
            "lr": config.learning_rate,
        }
    )
    return [group for group in groups if group["params"]]


def _encoder_depth(name: str) -> int | None:
    """The index of the encoder layer a parameter belongs to (`...layer.<i>....`), if any."""
    parts = name.split(".")
    for part, following in itertools.pairwise(parts):
        if part == "layer" and following.isdigit():
            return int(following)
    return None


def learning_rate_schedule(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A factor on each group's rate per step: 1, or linear warm-up then linear decay to 0."""
    warmup = round(config.warmup_fraction * total_steps)

    def factor(step: int) -> float:
        if config.schedule == "constant":
            return 1.0
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_epoch(
    model: SentimentClassifier,
    encoder: TextEncoder,
    train_set: EncodedExamples,
    batches: list[list[int]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    bar: tqdm[None],
    rdrop_alpha: float = 0.0,
) -> tuple[float, float]:
    """One pass over `batches` (lists of indices) with dropout on: (mean loss, accuracy)."""
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    for indices in batches:
        batch = make_batch(encoder, train_set, indices)
        if rdrop_alpha:
            logits, loss = rdrop_loss(model, batch, rdrop_alpha)
        else:
            logits, _ = model.forward_logits(batch.input_ids, batch.attention_mask)  # (B, C)
            loss = nn.functional.cross_entropy(logits, batch.labels)
        optimizer.zero_grad()
        torch.autograd.backward(loss)
        optimizer.step()
        scheduler.step()
        loss_sum += loss.item() * len(indices)
        correct += int((logits.argmax(dim=-1) == batch.labels).sum())
        seen += len(indices)
        bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}", refresh=False)
        bar.update()
    return loss_sum / seen, correct / seen


def rdrop_loss(
    model: SentimentClassifier, batch: Batch, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """R-Drop: the batch twice in one pass (dropout differs between the copies); the mean of
    their cross-entropies plus `alpha` times the symmetric KL divergence between their
    predictions. Returns the first copy's logits (B, C) and the loss."""
    doubled_ids = torch.cat([batch.input_ids, batch.input_ids])  # (2B, T)
    doubled_mask = torch.cat([batch.attention_mask, batch.attention_mask])
    logits, _ = model.forward_logits(doubled_ids, doubled_mask)  # (2B, C)
    first, second = logits.chunk(2)
    cross_entropy = (
        nn.functional.cross_entropy(first, batch.labels)
        + nn.functional.cross_entropy(second, batch.labels)
    ) / 2
    log_first, log_second = first.log_softmax(dim=-1), second.log_softmax(dim=-1)
    divergence = (
        nn.functional.kl_div(log_first, log_second, log_target=True, reduction="batchmean")
        + nn.functional.kl_div(log_second, log_first, log_target=True, reduction="batchmean")
    ) / 2
    return first, cross_entropy + alpha * divergence


@torch.no_grad()
def predicted_ids(
    model: SentimentClassifier, encoder: TextEncoder, data: EncodedExamples
) -> list[int]:
    """Each example's most probable label id, with dropout off."""
    was_training = model.training
    model.eval()
    predicted: list[int] = []
    for start in range(0, len(data.labels), EVAL_BATCH_SIZE):
        indices = range(start, min(start + EVAL_BATCH_SIZE, len(data.labels)))
        batch = make_batch(encoder, data, indices)
        logits, _ = model.forward_logits(batch.input_ids, batch.attention_mask)  # (B, C)
        predicted.extend(logits.argmax(dim=-1).tolist())
    model.train(was_training)
    return predicted


def accuracy(model: SentimentClassifier, encoder: TextEncoder, data: EncodedExamples) -> float:
    """Share of examples whose most probable label is the true one, with dropout off."""
    predicted = predicted_ids(model, encoder, data)
    return sum(p == t for p, t in zip(predicted, data.labels, strict=True)) / len(data.labels)
