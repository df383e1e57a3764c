"""Prompt formats, chosen in the recipe (never by an environment switch).

- ``continuation``: the prompt is raw text the model continues (base models, IMDb-style tasks);
- ``chat``: the tokenizer's chat template, one user turn, assistant reply as the completion;
- ``template``: a plain format string with ``{prompt}``, e.g. ``"Question: {prompt}\\nAnswer:"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase


def render_prompt(
    prompt: str, fmt: str, tokenizer: PreTrainedTokenizerBase, template: str | None = None
) -> str:
    """The exact text fed to ``generate`` for one prompt."""
    if fmt == "continuation":
        return prompt
    if fmt == "template":
        assert template is not None
        return template.format(prompt=prompt)
    if fmt == "chat":
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("prompt_format=chat but the tokenizer has no chat template")
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    raise ValueError(f"unknown prompt_format {fmt!r}")


def to_trl_format(dataset: Dataset, fmt: str, template: str | None = None) -> Dataset:
    """Map prompt/completion or preference columns to what TRL expects for ``fmt``.

    TRL's own conventions do the rest: a prompt-completion dataset trains on the completion
    only; a conversational one goes through the chat template.
    """
    cols = set(dataset.column_names)
    answer_cols = [c for c in ("completion", "chosen", "rejected") if c in cols]
    if "prompt" not in cols or fmt == "continuation":
        return dataset
    if fmt == "template":
        assert template is not None
        return dataset.map(lambda r: {"prompt": template.format(prompt=r["prompt"])})

    def to_chat(row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"prompt": [{"role": "user", "content": row["prompt"]}]}
        for c in answer_cols:
            out[c] = [{"role": "assistant", "content": row[c]}]
        return out

    return dataset.map(to_chat)
