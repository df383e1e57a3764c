"""Training through TRL's own trainers: fine-tuning (``train``), pre-training from scratch
(``pretrain``), the table of methods (``methods``) and the plumbing they share (``common``).

Kept empty on purpose: ``resistkit.recipes`` reads the method table, and importing it must not
pull in the trainers.
"""
