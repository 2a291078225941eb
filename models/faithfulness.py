"""Is the attention an explanation? Comprehensiveness of the top-k tokens by three rankings.

For each sentence, the model's predicted class y and its probability p(y | x). Remove (delete)
the k tokens a ranking puts first and measure the drop p(y | x) - p(y | x without them);
AOPC is that drop averaged over k = 1..5 and over sentences (DeYoung et al., 2020). Rankings:

    attention         the model's own per-token weights (the highlights the API returns)
    random            a random order: the floor any explanation must beat
    gradient_x_input  (d p(y) / d e_t) . e_t on the token embeddings e_t

A sentence always keeps one token (a model needs one), so at most n - 1 tokens are removed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from attnserve.artifact.manifest import FaithfulnessRecord
from attnserve.artifact.tokenizer import EncodedText, TextEncoder
from attnserve.models.classifiers import SentimentClassifier

KS = (1, 2, 3, 4, 5)
RANDOM_DRAWS = 3
BATCH_SIZE = 256

Ranking = Callable[[list[EncodedText]], list[list[int]]]


def measure_faithfulness(
    model: SentimentClassifier,
    encoder: TextEncoder,
    sentences: Sequence[str],
    *,
    has_attention: bool,
    seed: int = 0,
) -> FaithfulnessRecord:
    """AOPC of each ranking on `sentences` (those with no tokens are left out)."""
    was_training = model.training
    model.eval()
    encoded = [item for item in encoder.encode(list(sentences)) if item.ids]
    if not encoded:
        raise ValueError("faithfulness needs at least one sentence with a token")
    probabilities = _probabilities(model, encoder, encoded)  # (N, C)
    predicted = probabilities.argmax(dim=1)  # (N,)
    base = probabilities.gather(1, predicted.unsqueeze(1)).squeeze(1)  # (N,)

    def aopc(order: list[list[int]]) -> float:
        drops = []
        for k in KS:
            kept = [_without(item, ranked[:k]) for item, ranked in zip(encoded, order, strict=True)]
            after = _probabilities(model, encoder, kept).gather(1, predicted.unsqueeze(1))
            drops.append(base - after.squeeze(1))  # (N,)
        return float(torch.stack(drops).mean())

    generator = torch.Generator().manual_seed(seed)
    random_aopc = sum(
        aopc([torch.randperm(len(item.ids), generator=generator).tolist() for item in encoded])
        for _ in range(RANDOM_DRAWS)
    )
    aopcs = {
        "random": random_aopc / RANDOM_DRAWS,
        "gradient_x_input": aopc(_gradient_order(model, encoder, encoded, predicted)),
    }
    if has_attention:
        aopcs["attention"] = aopc(_attention_order(model, encoder, encoded))
    model.train(was_training)
    return FaithfulnessRecord(
        ks=list(KS), sentences=len(encoded), aopc=aopcs, summary=summarise(aopcs)
    )


def summarise(aopcs: dict[str, float]) -> str:
    """One sentence saying how the attention's top tokens compare with the two references."""
    random, gradient = aopcs["random"], aopcs["gradient_x_input"]
    if "attention" not in aopcs:
        return (
            f"No attention to trust. Deleting the top 1-5 gradient x input tokens lowers the "
            f"predicted class's probability by {gradient:.3f} on average, random ones {random:.3f}."
        )
    attention = aopcs["attention"]
    ratio = f"{attention / random:.1f}x" if random > 0 else "more than"
    return (
        f"Deleting the 1-5 most attended tokens lowers the predicted class's probability by "
        f"{attention:.3f} on average: {ratio} random tokens ({random:.3f}); the top gradient x "
        f"input tokens lower it by {gradient:.3f}."
    )


def _without(item: EncodedText, removed: Sequence[int]) -> EncodedText:
    """The text with the positions in `removed` deleted, keeping at least its first survivor."""
    removed_set = set(removed[: len(item.ids) - 1])
    keep = [i for i in range(len(item.ids)) if i not in removed_set]
    return EncodedText(
        ids=[item.ids[i] for i in keep],
        offsets=[item.offsets[i] for i in keep],
        word_ids=[item.word_ids[i] for i in keep],
        words=item.words,
        truncated=item.truncated,
    )


def _batches(
    encoder: TextEncoder, encoded: list[EncodedText]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    for start in range(0, len(encoded), BATCH_SIZE):
        padded = encoder.pad(encoded[start : start + BATCH_SIZE])
        out.append((torch.from_numpy(padded.input_ids), torch.from_numpy(padded.attention_mask)))
    return out


@torch.no_grad()
def _probabilities(
    model: SentimentClassifier, encoder: TextEncoder, encoded: list[EncodedText]
) -> torch.Tensor:
    return torch.cat([model(ids, mask)[0] for ids, mask in _batches(encoder, encoded)])  # (N, C)


@torch.no_grad()
def _attention_order(
    model: SentimentClassifier, encoder: TextEncoder, encoded: list[EncodedText]
) -> list[list[int]]:
    weights = [model(ids, mask)[1] for ids, mask in _batches(encoder, encoded)]
    return _descending(encoded, [row for batch in weights for row in batch])


def _gradient_order(
    model: SentimentClassifier,
    encoder: TextEncoder,
    encoded: list[EncodedText],
    predicted: torch.Tensor,
) -> list[list[int]]:
    """Tokens by (d p(y) / d e_t) . e_t, largest first; rows are independent, so one backward."""
    captured: list[torch.Tensor] = []

    def keep(_: torch.nn.Module, __: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        output.retain_grad()
        captured.append(output)

    handle = model.input_embedding().register_forward_hook(keep)
    scores: list[torch.Tensor] = []
    try:
        start = 0
        for ids, mask in _batches(encoder, encoded):
            captured.clear()
            probabilities, _ = model(ids, mask)  # (B, C)
            rows = predicted[start : start + len(ids)].unsqueeze(1)  # (B, 1)
            model.zero_grad()
            torch.autograd.backward(probabilities.gather(1, rows).sum())
            embedded = captured[0]  # (B, T, E)
            assert embedded.grad is not None
            scores.extend((embedded.grad * embedded).sum(dim=-1).detach())  # (T,) each
            start += len(ids)
    finally:
        handle.remove()
        model.zero_grad()
    return _descending(encoded, scores)


def _descending(encoded: list[EncodedText], scores: list[torch.Tensor]) -> list[list[int]]:
    """Each text's real positions, highest score first (ties: earlier first)."""
    return [_ranked(row[: len(item.ids)]) for item, row in zip(encoded, scores, strict=True)]


def _ranked(scores: torch.Tensor) -> list[int]:
    values = scores.tolist()
    return sorted(range(len(values)), key=lambda i: (-values[i], i))
