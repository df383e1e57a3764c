"""What GRPO needs beyond TRL's own trainer: a reward from resistkit's scorer registry, and
rollouts sampled by resistkit's batched generation code.

The reward of a completion is one score column of a registered scorer (``reward.column``), or
its negative (``maximize: false``) for the inverse direction; GRPO normalises rewards within
each prompt's group, so -p and 1-p give the same advantages. A completion the scorer cannot
score (empty) gets no reward (TRL's ``None``).

Rollouts go through ``resistkit.generation.hf.sample_completions`` (the sampler of every
evaluation point) with TRL's sampling settings from the config (``temperature``, ``top_p``,
``top_k``, ``max_completion_length``). Each generation round draws from its own seed (the
training seed, the optimizer step and the process), so a resumed run samples what an
uninterrupted one would.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

REWARD_SEED_STRIDE = 1_000_003  # steps apart in seed space; batches inside a round add b < it


def trainer_extras(recipe: Any, tokenizer: Any) -> dict[str, Any]:
    """GRPOTrainer keyword arguments for a recipe: its reward function and the rollout."""
    # rollout_func is marked experimental in TRL 1.16; its contract is small and tested here.
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    return {"reward_funcs": [reward_function(recipe.reward)], "rollout_func": rollout}


def _text(completion: Any) -> str:
    """A completion as text (conversational completions are lists of messages)."""
    if isinstance(completion, list):
        return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
    return str(completion)


def reward_function(spec: Any) -> Any:
    """A TRL reward function scoring completions with ``spec.scorer`` (see the module doc)."""
    from resistkit.judge import ensure_judges
    from resistkit.scoring import score_records

    # A built-in judge the reward scorer loads (named or by default) is built on first use.
    options = ensure_judges([spec.scorer], spec.options)
    sign = 1.0 if spec.maximize else -1.0

    def reward(prompts: list[Any], completions: list[Any], **_: Any) -> list[float | None]:
        records = {"prompt": [_text(p) for p in prompts],
                   "response": [_text(c) for c in completions]}
        values = score_records(records, [spec.scorer], **options)[spec.column]
        return [None if math.isnan(v) else sign * v for v in values]

    # TRL logs each reward under its function's name: rewards/<scorer>:<column>.
    reward.__name__ = f"{spec.scorer}:{spec.column}{'' if spec.maximize else ':inverse'}"
    return reward


def rollout(prompts: list[Any], trainer: Any) -> dict[str, Any]:
    """TRL's ``rollout_func``: one completion per prompt entry (TRL already repeats each prompt
    ``num_generations`` times), sampled by resistkit's batched generator."""
    from trl.models import unwrap_model_for_generation

    from resistkit.generation.common import DecodingParams
    from resistkit.generation.hf import sample_completions

    args, tok = trainer.args, trainer.processing_class
    if prompts and isinstance(prompts[0], list):  # conversational
        prompt_ids = tok.apply_chat_template(prompts, add_generation_prompt=True, tokenize=True,
                                             return_dict=True)["input_ids"]
    else:
        prompt_ids = tok(text=list(prompts))["input_ids"]
    params = DecodingParams(
        max_new_tokens=args.max_completion_length, do_sample=True,
        temperature=args.temperature, top_p=args.top_p, top_k=args.top_k or 0,
        num_return_sequences=1,
        seed=args.seed + REWARD_SEED_STRIDE * (trainer.state.global_step + 1)
        + 7919 * trainer.accelerator.process_index,
    )
    start = time.perf_counter()
    with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                     gather_deepspeed3_params=args.ds3_gather_for_generation) as m:
        was_training = m.training
        m.eval()
        completion_ids = sample_completions(m, tok, prompt_ids, params,
                                            batch_size=len(prompt_ids))
        m.train(was_training)
    # TRL averages its _metrics over a logging interval and logs them: rollout cost per round.
    trainer._metrics["train"]["rollout_seconds"].append(time.perf_counter() - start)
    return {"prompt_ids": [list(p) for p in prompt_ids], "completion_ids": completion_ids,
            "logprobs": None}
