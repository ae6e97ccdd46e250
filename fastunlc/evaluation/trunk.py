"""The trunk an evaluation starts from: trained weights, an ImageNet AlexNet, or random,
frozen up to a layer.

``--weights`` takes a run folder of ``train/`` (its ``weights.pt``), a ``weights.pt`` or
``checkpoint.pt``, any AlexNet state dict with the trunk's layer shapes under plain
names (``conv1.weight`` …) or torchvision's layout (``features.0.weight`` …), or
``random``. ``--freeze LAYER`` fixes every layer up to and including LAYER (``none``:
everything trains); a frozen layer's BatchNorm keeps its statistics (eval mode).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..training.model import TRUNK_LAYERS, MaskAlexNet, load_trunk, read_weights

FREEZE_CHOICES = ("none", *TRUNK_LAYERS)
"""What ``--freeze`` takes: nothing, or the last frozen layer."""
RANDOM = "random"


def read_state(source: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state dict ``source`` names (see the module and
    :func:`~fastunlc.training.model.read_weights`); ``{}`` for ``random``.

    Raises InputError for a missing or unreadable file."""
    if str(source) == RANDOM:
        return {}
    return read_weights(source, missing="no such weights file (give a train/ run folder, "
                                        "a .pt state dict or 'random')")


def load_trunk_weights(source: str | os.PathLike[str], batch_norm: bool | None = None,
                       seed: int = 0) -> tuple[MaskAlexNet, list[str]]:
    """A :class:`MaskAlexNet` with the trunk of ``source`` (its mask head unused by the
    evaluations) and the names of the layers loaded (``[]`` for ``random``).

    ``batch_norm`` None follows the weights (BatchNorm when they have ``conv1_bn``);
    random weights are drawn with ``seed`` (the trunk's own initialisation).

    Raises InputError when the weights do not fit the trunk."""
    state = read_state(source)
    if batch_norm is None:
        batch_norm = "conv1_bn.weight" in state
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MaskAlexNet(batch_norm=batch_norm)
    if not state:
        return model, []
    try:
        loaded = load_trunk(model, state)
    except ValueError as err:
        raise InputError(Path(source), f"weights do not fit the AlexNet trunk: {err}") from None
    return model, loaded


def frozen_layers(freeze: str) -> tuple[str, ...]:
    """The trunk layers ``--freeze freeze`` fixes, in order."""
    if freeze not in FREEZE_CHOICES:
        raise ValueError(f"freeze must be one of {', '.join(FREEZE_CHOICES)}, got {freeze!r}")
    if freeze == "none":
        return ()
    return TRUNK_LAYERS[:TRUNK_LAYERS.index(freeze) + 1]


def freeze_trunk(model: MaskAlexNet, freeze: str) -> list[nn.Parameter]:
    """Fix the layers up to and including ``freeze`` (their parameters stop taking
    gradients; their BatchNorm stays in eval mode, see :func:`keep_frozen_in_eval`);
    returns the parameters still trained."""
    frozen = frozen_layers(freeze)
    for name, parameter in model.named_parameters():
        layer = name.split(".")[0].removesuffix("_bn")
        parameter.requires_grad_(layer not in frozen)
    model.frozen = frozen
    return [p for p in model.parameters() if p.requires_grad]


def keep_frozen_in_eval(model: MaskAlexNet) -> None:
    """Put the BatchNorm of frozen layers back in eval mode (after ``model.train()``), so
    that training the layers above does not move their statistics."""
    for layer in getattr(model, "frozen", ()):
        norm = getattr(model, f"{layer}_bn", None)
        if norm is not None:
            norm.eval()
