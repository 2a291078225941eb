"""Each architecture's shapes, attention invariants and independence from padding."""

from __future__ import annotations

from typing import get_args

import pytest
import torch
from torch import nn

from attnserve.models.architecture_names import ArchitectureName
from attnserve.models.architectures import ARCHITECTURES, build_model
from attnserve.models.classifiers import (
    EmbeddingClassifier,
    SentimentClassifier,
    reverse_within_length,
)
from attnserve.models.config import ModelConfig
from attnserve.models.luong import LuongClassifier, LuongLocalAttention
from attnserve.models.transformer import TransformerClassifier

PAD = 0
VOCAB = 40
LENGTHS = [3, 7, 1, 12]


def _model(architecture: str) -> SentimentClassifier:
    torch.manual_seed(0)
    config = ModelConfig(
        architecture,
        vocab_size=VOCAB,
        pad_token_id=PAD,
        hidden_dim=16,
        embedding_dim=8,
        # ids no random sentence holds; only a pretrained encoder's head skips them
        special_token_ids=(VOCAB, VOCAB + 1),
    )
    return build_model(config).eval()


def _batch(lengths: list[int], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded random sentences of the given lengths: ids and mask, (B, T) int64."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    input_ids = torch.full((len(lengths), width), PAD, dtype=torch.int64)
    attention_mask = torch.zeros((len(lengths), width), dtype=torch.int64)
    for row, length in enumerate(lengths):
        input_ids[row, :length] = torch.randint(1, VOCAB, (length,), generator=generator)
        attention_mask[row, :length] = 1
    return input_ids, attention_mask


@pytest.fixture(params=sorted(ARCHITECTURES))
def model(request: pytest.FixtureRequest) -> SentimentClassifier:
    return _model(request.param)


@torch.no_grad()
def test_output_shapes_and_probabilities(model: SentimentClassifier) -> None:
    input_ids, attention_mask = _batch(LENGTHS)

    probabilities, attention = model(input_ids, attention_mask)
    logits, logits_attention = model.forward_logits(input_ids, attention_mask)

    assert probabilities.shape == (4, 2) and probabilities.dtype == torch.float32
    assert attention.shape == (4, 12) and attention.dtype == torch.float32
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(4))
    torch.testing.assert_close(probabilities, torch.softmax(logits, dim=-1))
    assert torch.equal(attention, logits_attention)


@torch.no_grad()
def test_attention_is_zero_on_padding_and_sums_to_one(model: SentimentClassifier) -> None:
    input_ids, attention_mask = _batch(LENGTHS)

    _, attention = model(input_ids, attention_mask)

    assert torch.all(attention[attention_mask == 0] == 0.0)
    if ARCHITECTURES[model.config.architecture].has_attention:
        torch.testing.assert_close(attention.sum(dim=1), torch.ones(4), atol=1e-6, rtol=0)
        assert torch.all(attention[attention_mask == 1] >= 0.0)
        if not model.config.architecture.startswith("luong-local"):
            assert torch.all(attention[attention_mask == 1] > 0.0)
    else:
        assert torch.all(attention == 0.0)


@torch.no_grad()
def test_answer_does_not_depend_on_padding(model: SentimentClassifier) -> None:
    input_ids, attention_mask = _batch(LENGTHS)
    batched_probabilities, batched_attention = model(input_ids, attention_mask)

    for row, length in enumerate(LENGTHS):
        alone_ids = input_ids[row : row + 1, :length]
        alone_probabilities, alone_attention = model(alone_ids, torch.ones_like(alone_ids))
        torch.testing.assert_close(
            batched_probabilities[row], alone_probabilities[0], atol=1e-6, rtol=0
        )
        torch.testing.assert_close(
            batched_attention[row, :length], alone_attention[0], atol=1e-6, rtol=0
        )


@torch.no_grad()
def test_accepts_a_sequence_longer_than_any_seen(model: SentimentClassifier) -> None:
    length = ARCHITECTURES[model.config.architecture].max_positions or 600
    input_ids, attention_mask = _batch([length, 5])

    probabilities, attention = model(input_ids, attention_mask)

    assert probabilities.shape == (2, 2) and attention.shape == (2, length)
    assert torch.isfinite(probabilities).all() and torch.isfinite(attention).all()
    assert torch.all(attention[1, 5:] == 0.0)


def test_reverse_within_length_reverses_real_tokens_only() -> None:
    x = torch.tensor([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]]).unsqueeze(-1)  # (B, T, 1)
    lengths = torch.tensor([3, 5])

    reversed_x = reverse_within_length(x, lengths)

    assert reversed_x.squeeze(-1).tolist() == [[3, 2, 1, 0, 0], [8, 7, 6, 5, 4]]
    assert torch.equal(reverse_within_length(reversed_x, lengths), x)


@torch.no_grad()
def test_naive_bidirectional_lstm_is_not_padding_invariant() -> None:
    """The trap the bilstm avoids, so that the invariance test above has teeth."""
    torch.manual_seed(0)
    naive = nn.LSTM(8, 16, batch_first=True, bidirectional=True)
    sentence = torch.randn(1, 3, 8)
    padded = torch.cat([sentence, torch.zeros(1, 9, 8)], dim=1)

    alone, _ = naive(sentence)  # (1, 3, 32)
    with_padding, _ = naive(padded)  # (1, 12, 32)

    backward_gap = (alone[0, :, 16:] - with_padding[0, :3, 16:]).abs().max().item()
    assert backward_gap > 1e-3


def test_embedding_ignores_the_pad_id() -> None:
    model = _model("bilstm-additive")

    assert isinstance(model, EmbeddingClassifier)
    assert torch.all(model.embedding.weight[PAD] == 0.0)


def test_unknown_architecture_names_the_known_ones() -> None:
    config = ModelConfig("gru", vocab_size=VOCAB, pad_token_id=PAD)

    with pytest.raises(ValueError, match="bilstm-additive, lstm, lstm-additive, luong-global-co"):
        build_model(config)


def test_registry_describes_every_architecture() -> None:
    # the names the command line offers without importing PyTorch are these
    assert sorted(ARCHITECTURES) == sorted(get_args(ArchitectureName))
    assert len(ARCHITECTURES) == 10
    assert [name for name, info in ARCHITECTURES.items() if info.exporter == "dynamo"] == [
        "minilm-attention",
        "transformer",
    ]
    assert [name for name, info in ARCHITECTURES.items() if not info.has_attention] == ["lstm"]
    assert "no attention" in ARCHITECTURES["lstm"].description


@pytest.mark.parametrize("architecture", ["luong-local-monotonic", "luong-local-predictive"])
@torch.no_grad()
def test_local_attention_stays_inside_its_window(architecture: str) -> None:
    model = _model(architecture)
    assert isinstance(model, LuongClassifier)
    assert isinstance(model.attention, LuongLocalAttention)
    input_ids, attention_mask = _batch([20, 12])

    _, attention = model(input_ids, attention_mask)
    _, query = model.encoder(model.embed(input_ids), attention_mask)
    p = model.attention.aligned_position(query, attention_mask).squeeze(1)  # (B,)

    half_width = model.attention.half_width
    for row, length in enumerate([20, 12]):
        support = attention[row].nonzero().squeeze(1).to(torch.float32)
        assert 1 <= len(support) <= 2 * half_width + 1
        assert torch.all((support - p[row]).abs() <= half_width)
        assert 0.0 <= p[row] <= length
    if architecture.endswith("monotonic"):
        assert p.tolist() == [19.0, 11.0]


@torch.no_grad()
def test_transformer_maps_are_per_layer_and_head_and_zero_off_the_real_tokens() -> None:
    model = _model("transformer")
    assert isinstance(model, TransformerClassifier)
    input_ids, attention_mask = _batch(LENGTHS)

    _, _, maps = model.forward_detail(input_ids, attention_mask)

    real = attention_mask.bool()
    pairs = real[:, None, None, :, None] & real[:, None, None, None, :]  # (B, 1, 1, T, T)
    assert maps.shape == (4, 2, 4, 12, 12)
    assert torch.all(maps.masked_select(~pairs.expand_as(maps)) == 0.0)
    rows = maps.sum(dim=-1)  # (B, L, h, T)
    torch.testing.assert_close(
        rows, real[:, None, None, :].expand_as(rows).to(torch.float32), atol=1e-6, rtol=0
    )
