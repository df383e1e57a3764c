"""A frozen sentence encoder with a linear probe on its pooled hidden states, as a classifier.

The all-mpnet-base-v2 sentiment judge (``resistkit judge build sentiment-mpnet``) is the mean of
the encoder's token hidden states at a few layers, concatenated, and a logistic regression on
them. Saved as this ``AutoModelForSequenceClassification`` (model type
``resistkit-pooled-probe``), it loads and scores through the same path as every other judge:
``from_pretrained``, a tokenizer, ``logits`` over two labels. The regression's standardisation
is folded into the linear layer, and its one logit ``z`` is returned as the pair ``(-z/2, z/2)``,
whose softmax is ``(1 - sigmoid(z), sigmoid(z))``: P(label 1) is the regression's probability.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput

MODEL_TYPE = "resistkit-pooled-probe"


class PooledProbeConfig(PretrainedConfig):
    model_type = MODEL_TYPE

    def __init__(self, encoder: dict[str, Any] | None = None,
                 layers: tuple[int, ...] | list[int] = (), **kwargs: Any) -> None:
        self.encoder = dict(encoder or {})
        self.layers = [int(layer) for layer in layers]
        super().__init__(**kwargs)

    def encoder_config(self) -> PretrainedConfig:
        settings = dict(self.encoder)
        return AutoConfig.for_model(settings.pop("model_type"), **settings)


class PooledProbeForSequenceClassification(PreTrainedModel):
    config_class = PooledProbeConfig
    base_model_prefix = "encoder"
    main_input_name = "input_ids"

    def __init__(self, config: PooledProbeConfig) -> None:
        super().__init__(config)
        self.encoder = AutoModel.from_config(config.encoder_config())
        width = self.encoder.config.hidden_size * len(config.layers)
        self.probe = torch.nn.Linear(width, 1)
        self.post_init()

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean over the real tokens of each probed layer's hidden states, concatenated."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              output_hidden_states=True).hidden_states
        weights = attention_mask.unsqueeze(-1).to(hidden[0].dtype)
        return torch.cat([(hidden[layer] * weights).sum(1) / weights.sum(1)
                          for layer in self.config.layers], dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                **_: Any) -> SequenceClassifierOutput:
        # Other tokenizer outputs (a BERT tokenizer's token_type_ids) mean nothing to a
        # sentence encoder read by mean pooling; they are ignored.
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        z = self.probe(self.features(input_ids, attention_mask))
        return SequenceClassifierOutput(logits=torch.cat([-z / 2, z / 2], dim=-1))


_registered = False


def register() -> None:
    """Make ``from_pretrained`` of the Auto classes know the probe (idempotent)."""
    global _registered
    if not _registered:
        AutoConfig.register(MODEL_TYPE, PooledProbeConfig, exist_ok=True)
        AutoModelForSequenceClassification.register(
            PooledProbeConfig, PooledProbeForSequenceClassification, exist_ok=True)
        _registered = True
