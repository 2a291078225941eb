"""Is the attention an explanation? Comprehensiveness of the top-k tokens by three rankings.

For each sentence, the model's predicted class y and its probability p(y | x). Remove (delete)
the k words a ranking puts first and measure the drop p(y | x) - p(y | x without them);
AOPC is that drop averaged over k = 1..5 and over sentences (DeYoung et al., 2020). It is
measured in words, as the API answers: a word-piece model's word is all of its pieces (scored
by their sum, deleted together; [CLS] and [SEP] stay), a word-level model's word its token.
Rankings:

    attention         the model's own weights (the highlights the API returns)
    random            a random order: the floor any explanation must beat
    gradient_x_input  integrated gradients (Sundararajan et al., 2017): (d p(y) / d e_t) . e_t
                      averaged along the path from all-zero embeddings to e, in
                      INTEGRATION_STEPS steps, on the output e_t of `input_embedding`

Why integrated: the plain product, at e alone, is a first-order guess of what zeroing e_t
does, and that guess is wrong once layer norms follow the embeddings. In the pre-norm
`transformer`, the tokens that mattered most had the most *negative* plain products (a
layer norm sees a direction, not a length), so ranking by them put the important tokens last:
its manifest's gradient x input AOPC was 0.037, below random tokens' 0.083. Averaging the
gradient along the path measures the whole change from zero to e_t instead; the LSTMs'
rankings, which the plain product served well, stay as good (tests/models/test_faithfulness.py
checks both on a task where one word decides the label).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from attnserve.artifact.manifest import FaithfulnessRecord
from attnserve.artifact.tokenizer import EncodedText, TextEncoder
from attnserve.models.classifiers import SentimentClassifier

KS = (1, 2, 3, 4, 5)
RANDOM_DRAWS = 3
INTEGRATION_STEPS = 16
BATCH_SIZE = 32

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
    # shortest first, so that each batch pads only to about its own length
    encoded = sorted(
        (item for item in encoder.encode(list(sentences)) if item.ids), key=lambda i: len(i.ids)
    )
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
        aopc([torch.randperm(len(item.words), generator=generator).tolist() for item in encoded])
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
    """The text with the words in `removed` deleted (all their positions), keeping at least
    one word and every special token."""
    removed_set = set(removed[: len(item.words) - 1])
    keep = [i for i, word in enumerate(item.word_ids) if word not in removed_set]
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
    """Tokens by integrated gradient x input, largest first: the mean over alpha in (0, 1] of
    (d p(y) / d x_t at x = alpha e) . e_t. Rows are independent, so one backward a step."""
    alpha = 0.0
    captured: list[torch.Tensor] = []

    def scale(
        _: torch.nn.Module, __: tuple[torch.Tensor, ...], output: torch.Tensor
    ) -> torch.Tensor:
        scaled = (output.detach() * alpha).requires_grad_(True)  # (B, T, E), a leaf
        captured.append(scaled)
        return scaled

    handle = model.input_embedding().register_forward_hook(scale)
    scores: list[torch.Tensor] = []
    try:
        start = 0
        for ids, mask in _batches(encoder, encoded):
            rows = predicted[start : start + len(ids)].unsqueeze(1)  # (B, 1)
            summed = torch.zeros(ids.shape, dtype=torch.float32)  # (B, T)
            for step in range(INTEGRATION_STEPS):
                alpha = (step + 0.5) / INTEGRATION_STEPS  # midpoints of the path
                captured.clear()
                probabilities, _ = model(ids, mask)  # (B, C)
                model.zero_grad()
                torch.autograd.backward(probabilities.gather(1, rows).sum())
                point = captured[0]  # alpha * e, (B, T, E)
                assert point.grad is not None
                summed += (point.grad * point).sum(dim=-1).detach() / alpha  # grad . e
            scores.extend(summed / INTEGRATION_STEPS)  # (T,) each
            start += len(ids)
    finally:
        handle.remove()
        model.zero_grad()
    return _descending(encoded, scores)


def _descending(encoded: list[EncodedText], scores: list[torch.Tensor]) -> list[list[int]]:
    """Each text's words, highest score (the sum of its positions') first; ties: earlier."""
    return [_ranked(_word_scores(item, row)) for item, row in zip(encoded, scores, strict=True)]


def _word_scores(item: EncodedText, row: torch.Tensor) -> torch.Tensor:
    """(words,) sums of a row's (T,) position scores over each word's positions."""
    words = torch.zeros(len(item.words), dtype=row.dtype)
    for position, word in enumerate(item.word_ids):
        if word is not None:
            words[word] += row[position]
    return words


def _ranked(scores: torch.Tensor) -> list[int]:
    values = scores.tolist()
    return sorted(range(len(values)), key=lambda i: (-values[i], i))
