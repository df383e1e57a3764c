"""The shipped accelerate configs (ddp, zero2, zero3, zero3_offload, fsdp). This folder is
installed as the package ``resistkit.accelerate_configs``; ``--accelerate-config NAME`` finds
them by name."""
