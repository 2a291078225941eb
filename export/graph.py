"""The module that becomes the ONNX graph: the classifier, plus its self-attention maps where
it has them (declared by `ArchitectureInfo.has_heads`), as the optional `heads` output."""

from __future__ import annotations

from typing import Protocol, cast

import torch
from torch import nn

from attnserve.artifact.manifest import TensorSpec
from attnserve.export.spec import output_specs
from attnserve.models.architectures import ARCHITECTURES
from attnserve.models.classifiers import SentimentClassifier


class _Detailed(Protocol):
    def forward_detail(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...

    def heads_shape(self) -> tuple[int, int]: ...


class WithHeads(nn.Module):
    """(probabilities (B, C), attention (B, T), heads (B, L, h, T, T))."""

    def __init__(self, model: SentimentClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        detailed = cast(_Detailed, self.model)
        logits, attention, heads = detailed.forward_detail(input_ids, attention_mask)
        return torch.softmax(logits, dim=-1), attention, heads


def graph_module(model: SentimentClassifier) -> nn.Module:
    """What to export for `model`, in eval mode like the model."""
    if not ARCHITECTURES[model.config.architecture].has_heads:
        return model
    return WithHeads(model).train(model.training)


def graph_outputs(model: SentimentClassifier) -> list[TensorSpec]:
    """The output specs of `graph_module(model)`, in graph order."""
    if not ARCHITECTURES[model.config.architecture].has_heads:
        return output_specs(model.config.num_labels)
    return output_specs(model.config.num_labels, cast(_Detailed, model).heads_shape())
