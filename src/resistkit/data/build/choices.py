"""The choices that shape the built-in data: thresholds, split fractions and refusal rules.

Shared by the per-source builders (reviews, pretrain, safety); the numeric ones are recorded in
``manifest.json`` by ``build_builtin``. Builds nothing itself.
"""

from __future__ import annotations

import re

# --- choices that shape the data (recorded in the manifest) ----------------------------------

REVIEW_POSITIVE_MIN = 1.0  # mean rating >= +1 on the -4..+4 scale: clearly positive
REVIEW_NEGATIVE_MAX = -1.0  # mean rating <= -1: clearly negative; (-1, +1) is dropped as neutral
REVIEW_PROMPT_WORDS = 4  # the prompt is the first 4 words, the completion the rest
REVIEW_MIN_WORDS = 6  # at least 2 words left to complete, or there is nothing to generate
REVIEW_HELDOUT_PER_LABEL = 300  # generation prompts per polarity, disjoint from training
PRETRAIN_HELDOUT = 0.02  # share of pre-training passages kept aside for compression measures
SAFETY_HELDOUT = 0.15  # share of safety prompts kept aside (by prompt, across all safety sets)
SAFE_MAX = 0.25  # mean human harm score <= 0.25: safe response
HARMFUL_MIN = 0.75  # mean human harm score >= 0.75: harmful response
WIKI_MIN_CHARS = 40
PASSAGE_MIN_CHARS = 300  # Shakespeare paragraphs are merged up to at least this many chars
PASSAGE_MAX_CHARS = 1000  # and a longer run of lines is cut at a line break

# Many-shot prompts that ask to reproduce songs or books (HarmBench's copyright behaviours):
# their answers may quote copyrighted text, so they are left out entirely.
COPYRIGHT_PROMPT = re.compile(r"^Generate (the lyrics of|a long passage from)\b", re.I)

# A refusal taken from a human-scored response is used for other prompts only when every word
# of its first sentence is in this list: that makes "generic" a checkable property rather than
# a judgment call, and keeps topic words ("ransomware", "Tom Cruise") out of unrelated answers.
GENERIC_REFUSAL_WORDS = frozenset({
    "i", "i'm", "am", "sorry", "but", "can't", "cannot", "won't", "will", "not", "do", "that",
    "this", "with", "help", "you", "assist", "request", "fulfill", "provide", "any",
    "information", "about", "on", "topic", "guidance", "really", "answer", "able", "no",
    "unable", "that's", "it",
})
REFUSAL_START = re.compile(
    r"^(i'?m sorry|i am sorry|sorry|i can'?t|i cannot|i won'?t|i will not|i'?m not able|"
    r"i am not able|i'?m unable|no, i)",
    re.I,
)
# Written for this package (not from any source) to widen the pool of refusals.
WRITTEN_REFUSALS = (
    "I can't help with that.",
    "I'm sorry, but I can't help with that request.",
    "I won't help with this, because it could cause real harm.",
    "Sorry, I can't assist with that. Is there something else I can help you with?",
    "I'm not able to help with this request.",
    "I can't provide that, and I'd rather not guess at a way around it.",
    "I'm sorry, I can't do that. It could hurt people, and I won't take part in it.",
    "That's not something I can help with.",
)
