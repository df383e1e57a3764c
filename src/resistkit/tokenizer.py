"""The byte-level BPE tokenizer for tiny models trained from scratch, and how it is made.

``default_tokenizer()`` loads the shipped one (vocabulary 4096, trained on the train split of
``builtin:pretrain``); ``resistkit data build`` re-creates it with ``build_default_tokenizer``.

Conventions, chosen so the same text tokenizes the same way in every stage:

- no token is added implicitly: ``tok(text)`` is just the BPE pieces (GPT-2 style), whether or
  not a caller passes ``add_special_tokens``; callers that want ``<s>``/``</s>`` add them;
- special tokens: ``<pad>`` (id 0), ``<s>`` (bos, 1), ``</s>`` (eos, 2), and the role markers
  ``<|system|>``, ``<|user|>``, ``<|assistant|>`` used by the chat template;
- the chat template wraps the assistant content and its ``</s>`` in ``{% generation %}``
  markers, so TRL's ``assistant_only_loss=True`` trains on replies only and learns to stop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

ASSET_DIR = Path(__file__).resolve().parent / "assets" / "tokenizer"
DEFAULT_VOCAB_SIZE = 4096
MODEL_MAX_LENGTH = 2048

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD, BOS, EOS, *ROLE_TOKENS)

# One turn per block: a role marker line, the content, a newline. The assistant's content and
# eos sit inside the generation markers; the rendering of a prompt with
# add_generation_prompt=True is a prefix of the full conversation, as TRL requires.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '<|assistant|>\n' -}}"
    "{%- generation -%}{{- message['content'] + eos_token -}}{%- endgeneration -%}"
    "{{- '\n' -}}"
    "{%- else -%}"
    "{{- '<|' + message['role'] + '|>\n' + message['content'] + '\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>\n' -}}{%- endif -%}"
)


def _wrap(tok: Any) -> PreTrainedTokenizerFast:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        extra_special_tokens=list(ROLE_TOKENS),
        chat_template=CHAT_TEMPLATE,
        model_max_length=MODEL_MAX_LENGTH,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )


def train_bpe_tokenizer(
    texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE, out_dir: Path | str | None = None
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts``; save it to ``out_dir`` when given.

    Deterministic: the same texts in the same order give the same vocabulary and merges (the
    ``tokenizers`` trainer breaks count ties by pair order, not by hash order).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    if vocab_size <= len(SPECIAL_TOKENS) + 256:
        raise ValueError(f"vocab_size must exceed {len(SPECIAL_TOKENS) + 256} (bytes + specials)")
    tok = Tokenizer(models.BPE())
    # Byte level: every string is encodable, no unknown token, decode(encode(x)) == x.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_nonempty(texts), trainer=trainer)
    fast = _wrap(tok)
    if out_dir is not None:
        save_tokenizer(fast, out_dir)
    return fast


def _nonempty(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        if text:
            yield text


def save_tokenizer(tok: PreTrainedTokenizerFast, out_dir: Path | str) -> Path:
    """Save in the ``from_pretrained`` layout."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out))
    return out


def load_tokenizer_dir(path: Path | str) -> PreTrainedTokenizerFast:
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(str(path))
    if tok.chat_template is None:  # older transformers keep the template only in the config
        tok.chat_template = CHAT_TEMPLATE
    return tok


def default_tokenizer() -> PreTrainedTokenizerFast:
    """The shipped tokenizer (a fresh object each call: callers change padding_side)."""
    if not (ASSET_DIR / "tokenizer.json").exists():
        raise FileNotFoundError(
            f"no tokenizer in {ASSET_DIR}; re-create it with `resistkit data build`"
        )
    return load_tokenizer_dir(ASSET_DIR)


def chars_per_token(tok: PreTrainedTokenizerFast, texts: Iterable[str]) -> float:
    """Characters per token over ``texts`` (higher = better compression)."""
    chars = tokens = 0
    for text in texts:
        chars += len(text)
        tokens += len(tok(text, add_special_tokens=False)["input_ids"])
    return chars / max(tokens, 1)


def build_default_tokenizer(
    data_dir: Path | str | None = None,
    out_dir: Path | str | None = None,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
) -> dict[str, Any]:
    """Re-create the default tokenizer from ``builtin:pretrain`` (train split) in ``data_dir``.

    Returns statistics, including chars/token on the held-out split.
    """
    from resistkit.data.registry import load_builtin

    train = load_builtin("pretrain", "train", data_dir)
    heldout = load_builtin("pretrain", "heldout", data_dir)
    tok = train_bpe_tokenizer(iter(train["text"]), vocab_size, out_dir or ASSET_DIR)
    return {
        "vocab_size": len(tok),
        "train_texts": len(train),
        "heldout_texts": len(heldout),
        "heldout_chars_per_token": round(chars_per_token(tok, heldout["text"]), 4),
    }
