"""Faithfulness on a task where the answer is known: each sentence's label is decided by one
word among fillers, so deleting that word must hurt most, and a gradient explanation worth
the name finds it far more often than random words do."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from attnserve.artifact.tokenizer import TextEncoder
from attnserve.models.checkpoint import load_checkpoint
from attnserve.models.faithfulness import measure_faithfulness
from attnserve.models.training import TrainConfig, train

FILLERS = [
    "the",
    "a",
    "it",
    "was",
    "this",
    "phone",
    "food",
    "place",
    "and",
    "we",
    "my",
    "our",
    "service",
    "table",
    "screen",
    "very",
]
DECIDING = {"good": 1, "great": 1, "bad": 0, "awful": 0}


def _sentence(rng: random.Random) -> tuple[str, int]:
    words = rng.choices(FILLERS, k=rng.randint(5, 9))
    word = rng.choice(sorted(DECIDING))
    words.insert(rng.randint(0, len(words)), word)
    return " ".join(words), DECIDING[word]


@pytest.fixture(scope="module")
def keyword_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A small transformer trained on 600 keyword sentences, and 100 held-out ones."""
    rng = random.Random(0)
    rows = [_sentence(rng) for _ in range(700)]
    data = tmp_path_factory.mktemp("keywords") / "keywords.tsv"
    data.write_text(
        "text\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows[:600]), "utf-8"
    )
    run_dir = data.parent / "run"
    config = TrainConfig(
        architecture="transformer", embedding_dim=16, hidden_dim=16, max_epochs=8, max_tokens=16
    )
    train([data], run_dir, config, progress=False)
    return run_dir, [text for text, _ in rows[600:]]


def test_gradient_x_input_finds_the_deciding_word_in_a_transformer(
    keyword_run: tuple[Path, list[str]],
) -> None:
    run_dir, held_out = keyword_run
    checkpoint = load_checkpoint(run_dir)
    assert checkpoint.record.metrics["test_accuracy"] >= 0.95  # the model did learn the task
    encoder = TextEncoder.from_file(checkpoint.tokenizer_path, checkpoint.record.max_tokens)

    record = measure_faithfulness(checkpoint.model, encoder, held_out, has_attention=True)

    # the plain product at e alone (no path integral) misses this bound on this model
    aopc = record.aopc
    assert aopc["gradient_x_input"] > 2 * aopc["random"], aopc
