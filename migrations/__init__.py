"""Alembic migrations of the wandb-mirror store, shipped as ``wandb_mirror.migrations``."""
