"""Loader for safe-rlhf score models (``PKU-Alignment/beaver-7b-v1.0-cost`` / ``-reward``).

safe-rlhf saves ``LlamaForScore``: a ``LlamaModel`` backbone under the ``model.`` prefix and a
``score_head`` linear layer (hidden -> score_dim) applied to every position. The score of a
sequence is the head's output at the last non-pad token. Its config carries ``score_type``
(reward / cost / critic), ``score_dim``, ``bias`` and optionally ``do_normalize`` with the
normaliser's ``mean`` / ``var``; we reproduce that forward pass without importing safe-rlhf.

Prompt layout (safe-rlhf ``configs/constants.py``): PROMPT_BEGIN + PROMPT_USER + PROMPT_ASSISTANT
= ``"BEGINNING OF CONVERSATION: USER: {input} ASSISTANT:"``, the answer follows with no space,
and safe-rlhf's preference datasets append the tokenizer's EOS before scoring.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

PROMPT_BEGIN = "BEGINNING OF CONVERSATION: "
PROMPT_USER = "USER: {input} "
PROMPT_ASSISTANT = "ASSISTANT:"
PROMPT_INPUT = PROMPT_BEGIN + PROMPT_USER + PROMPT_ASSISTANT

# safe-rlhf picks the normalisation from the score type (ScoreModelMixin.init_score_head).
_NORMALIZE_FUNCTION = {"reward": "affine", "cost": "scale", "critic": "identity"}


def format_safe_rlhf(prompt: str, response: str) -> str:
    return PROMPT_INPUT.format(input=prompt) + response


def is_score_model_config(config: Any) -> bool:
    """True for safe-rlhf checkpoints (architectures like ``LlamaForScore``)."""
    return any(a.endswith("ForScore") for a in (getattr(config, "architectures", None) or []))


@lru_cache(maxsize=1)
def score_model_class() -> type:
    """Build the class on first use so that importing this module does not import torch."""
    import torch
    from torch import nn
    from transformers import LlamaModel, LlamaPreTrainedModel

    class LlamaForScore(LlamaPreTrainedModel):
        # Names match the checkpoint keys, so from_pretrained loads shards, dtypes and hub
        # revisions exactly as for any transformers model.
        _keys_to_ignore_on_load_unexpected = [r"^normalizer\.", r"^lm_head\."]

        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.model = LlamaModel(config)
            score_dim = getattr(config, "score_dim", 1)
            self.score_head = nn.Linear(
                config.hidden_size, score_dim, bias=bool(getattr(config, "bias", False))
            )
            self.post_init()

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            """End scores, shape (batch, score_dim), read at the last non-pad token."""
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]
            # Last index where the mask is 1, for right or left padding alike.
            positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
            end = (positions * attention_mask.to(positions.dtype)).argmax(dim=1)
            end_hidden = hidden[torch.arange(hidden.shape[0], device=hidden.device), end]
            scores = self.score_head(end_hidden).float()
            return self._normalize(scores)

        def _normalize(self, scores: torch.Tensor) -> torch.Tensor:
            cfg = self.config
            if not getattr(cfg, "do_normalize", False):
                return scores
            function = _NORMALIZE_FUNCTION.get(getattr(cfg, "score_type", "reward"), "affine")
            mean = torch.as_tensor(getattr(cfg, "mean", None) or 0.0, device=scores.device)
            std = torch.as_tensor(getattr(cfg, "var", None) or 1.0, device=scores.device).sqrt()
            eps = 1e-8  # safe-rlhf Normalizer default
            if function == "affine":
                return (scores - mean) / (std + eps)
            if function == "scale":
                return scores / (std + eps)
            return scores

    return LlamaForScore
