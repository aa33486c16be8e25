"""The package's public surface: a sorted __all__ whose names all resolve, one error tree."""
from __future__ import annotations

import wandb_mirror
from wandb_mirror import errors


def test_all_is_sorted_and_resolves():
    names = [n for n in wandb_mirror.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in wandb_mirror.__all__:
        assert getattr(wandb_mirror, name) is not None


def test_every_error_derives_from_mirror_error():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.MirrorError), name
        assert name in wandb_mirror.__all__, name
