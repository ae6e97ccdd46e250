"""The network: AlexNet's trunk with a mask head (paper, section 4; spec section 8).

Layer sizes are the original AlexNet's (Krizhevsky et al. 2012, without its two-GPU
groups): conv1 96×11×11 stride 4, conv2 256×5×5, conv3 384×3×3, conv4 384×3×3, conv5
256×3×3, each followed by ReLU, max pooling 3×3 stride 2 after conv1, conv2 and conv5;
fc6 and fc7 4096 units with ReLU and dropout. The mask head is one linear layer from fc7
to ``56 × 56 = 3136`` logits; a sigmoid turns them into the mask at inference. A
``227 × 227`` input gives ``55 → 27 → 13 → 6`` spatial sizes, so fc6 sees ``256·6·6``.

Parameters carry plain layer names (``conv1.weight`` … ``fc7.bias``, ``mask.weight``;
``conv1_bn.*`` … with BatchNorm), the names :func:`plain_state_dict` writes and
:func:`read_weights` reads back for ``train/predict.py`` and ``eval/``.
:func:`load_trunk` also takes an ImageNet-style AlexNet state dict laid out as
torchvision's ``AlexNet`` (``features.N`` / ``classifier.N``) when its shapes are these.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError

INPUT_SIZE = 227
"""Side of the network's square input crop, in pixels (the paper's ``w``)."""
MASK_SIZE = 56
"""Side of the predicted mask (the paper's ``s``): ``s² = 3136`` outputs."""

CONVS = (  # name, in, out, kernel, stride, padding, max pooling after
    ("conv1", 3, 96, 11, 4, 0, True),
    ("conv2", 96, 256, 5, 1, 2, True),
    ("conv3", 256, 384, 3, 1, 1, False),
    ("conv4", 384, 384, 3, 1, 1, False),
    ("conv5", 384, 256, 3, 1, 1, True),
)
TRUNK_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
"""The trunk's layers in order: what ``eval/`` transfers and freezes."""

# torchvision's AlexNet layout: the index of each layer in `features` / `classifier`.
_TORCHVISION_NAMES = {"conv1": "features.0", "conv2": "features.3", "conv3": "features.6",
                      "conv4": "features.8", "conv5": "features.10", "fc6": "classifier.1",
                      "fc7": "classifier.4"}


class MaskAlexNet(nn.Module):
    """AlexNet trunk and a 56×56 mask head.

    Parameters
    ----------
    batch_norm : bool
        BatchNorm after each convolution (before its ReLU), as some AlexNet variants
        the paper compares against have.
    dropout : float
        Dropout probability before fc6, fc7 and the mask layer (AlexNet: 0.5).

    Shapes: ``forward`` takes ``(B, 3, 227, 227)`` float images, normalised, and returns
    ``(B, 56, 56)`` logits; :meth:`predict` returns probabilities in [0, 1].
    """

    def __init__(self, batch_norm: bool = False, dropout: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.batch_norm = batch_norm
        for name, cin, cout, kernel, stride, padding, _ in CONVS:
            self.add_module(name, nn.Conv2d(cin, cout, kernel, stride, padding,
                                            bias=not batch_norm))
            if batch_norm:
                self.add_module(f"{name}_bn", nn.BatchNorm2d(cout))
        self.pool = nn.MaxPool2d(3, 2)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(dropout)
        self.fc6 = nn.Linear(256 * 6 * 6, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.mask = nn.Linear(4096, MASK_SIZE * MASK_SIZE)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal weights for the ReLU layers, small normal for the mask head, zero
        biases (torchvision's AlexNet initialises with PyTorch's defaults; these train the
        summed logistic loss faster from scratch)."""
        for name in TRUNK_LAYERS:
            layer = getattr(self, name)
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        nn.init.normal_(self.mask.weight, std=1e-3)
        nn.init.zeros_(self.mask.bias)

    def features(self, x: torch.Tensor, upto: str = "fc7") -> torch.Tensor:
        """Activations of layer ``upto`` (one of :data:`TRUNK_LAYERS`), after its ReLU:
        ``(B, C, H, W)`` for a convolution, ``(B, 4096)`` for fc6/fc7."""
        if upto not in TRUNK_LAYERS:
            raise ValueError(f"upto must be one of {', '.join(TRUNK_LAYERS)}, got {upto!r}")
        for name, *_, pool in CONVS:
            x = getattr(self, name)(x)
            if self.batch_norm:
                x = getattr(self, f"{name}_bn")(x)
            x = self.relu(x)
            if pool:
                x = self.pool(x)
            if name == upto:
                return x
        x = self.relu(self.fc6(self.drop(torch.flatten(x, 1))))
        if upto == "fc6":
            return x
        return self.relu(self.fc7(self.drop(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.mask(self.drop(self.features(x)))
        return logits.view(-1, MASK_SIZE, MASK_SIZE)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 56, 56)`` foreground probabilities for ``(B, 3, 227, 227)`` images."""
        return torch.sigmoid(self(x))


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's parameters and buffers under plain layer names, on the CPU, whatever
    wraps it (``torch.compile``, DDP): ``conv1.weight`` … ``fc7.bias``, ``mask.*``."""
    inner = getattr(model, "_orig_mod", model)
    inner = getattr(inner, "module", inner)
    inner = getattr(inner, "_orig_mod", inner)
    return {name: value.detach().cpu().clone() for name, value in inner.state_dict().items()}


def weights_file(path: str | os.PathLike[str]) -> Path:
    """The weights file ``path`` names: ``path/weights.pt`` for a run folder, else
    ``path``."""
    path = Path(path)
    return path / "weights.pt" if path.is_dir() else path


def read_weights(path: str | os.PathLike[str], missing: str = "no such weights file"
                 ) -> dict[str, torch.Tensor]:
    """The state dict in :func:`weights_file` ``(path)``; a ``checkpoint.pt``'s ``model``
    entry. Loaded on the CPU with ``weights_only=True``; the names are the file's (plain
    or torchvision's layout).

    Raises InputError naming the file when it is missing (``missing`` is the reason
    given), unreadable or holds no state dict."""
    path = weights_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(path, missing) from None
    except Exception as err:
        raise InputError(path, f"not a readable weights file ({type(err).__name__})") from None
    if not isinstance(state, dict):
        raise InputError(path, "holds no state dict")
    return state.get("model", state)


def load_trunk(model: MaskAlexNet, state: Mapping[str, torch.Tensor]) -> list[str]:
    """Load trunk weights into ``model`` from plain names or torchvision's AlexNet layout.

    Every trunk layer present in ``state`` must match in shape; the mask head is loaded
    when ``state`` has one with the right shape. Returns the names of the layers loaded.

    Raises
    ------
    ValueError
        A layer's shape differs, or ``state`` holds no layer of the trunk.
    """
    own = model.state_dict()
    picked = {}
    for layer in (*TRUNK_LAYERS, "mask"):
        for prefix in (layer, _TORCHVISION_NAMES.get(layer)):
            if prefix and f"{prefix}.weight" in state:
                for part in ("weight", "bias"):
                    if f"{prefix}.{part}" not in state:
                        continue
                    value, target = state[f"{prefix}.{part}"], f"{layer}.{part}"
                    if target not in own:
                        raise ValueError(f"{prefix}.{part}: the model has no {target} "
                                         "(BatchNorm models have no conv bias)")
                    if tuple(value.shape) != tuple(own[target].shape):
                        raise ValueError(f"{prefix}.{part}: shape {tuple(value.shape)}, the "
                                         f"model's {target} is {tuple(own[target].shape)}")
                    picked[target] = value
                break
    for name, value in state.items():  # BatchNorm statistics travel under plain names only
        if "_bn." in name and name in own and own[name].shape == value.shape:
            picked[name] = value
    if not any(name.split(".")[0] in TRUNK_LAYERS for name in picked):
        raise ValueError("the state dict holds no AlexNet trunk layer (expected conv1.weight "
                         "or features.0.weight)")
    model.load_state_dict(picked, strict=False)
    return sorted({name.split(".")[0] for name in picked})


def fold_batch_norm(state: Mapping[str, torch.Tensor], eps: float = 1e-5
                    ) -> dict[str, torch.Tensor]:
    """A plain-named state dict with each ``convN_bn`` folded into ``convN``'s weight and
    bias (BatchNorm's inference-time affine map), so that a network without BatchNorm
    computes what the BatchNorm one computes in eval mode. States without BatchNorm come
    back as they are."""
    out = {name: value for name, value in state.items() if "_bn." not in name}
    for name, *_ in CONVS:
        if f"{name}_bn.weight" not in state:
            continue
        scale = state[f"{name}_bn.weight"] / torch.sqrt(state[f"{name}_bn.running_var"] + eps)
        out[f"{name}.weight"] = state[f"{name}.weight"] * scale.view(-1, 1, 1, 1)
        bias = state.get(f"{name}.bias", torch.zeros_like(scale))
        out[f"{name}.bias"] = (bias - state[f"{name}_bn.running_mean"]) * scale + state[
            f"{name}_bn.bias"]
    return out


def torchvision_layout(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A plain-named trunk state dict renamed to torchvision's AlexNet layout
    (``features.0.weight`` …), for :class:`PlainAlexNet`; BatchNorm is folded first."""
    state = fold_batch_norm(state)
    out = {}
    for layer, prefix in _TORCHVISION_NAMES.items():
        for part in ("weight", "bias"):
            if f"{layer}.{part}" in state:
                out[f"{prefix}.{part}"] = state[f"{layer}.{part}"]
    return out


class PlainAlexNet(nn.Module):
    """A classification AlexNet with this trunk's sizes in torchvision's module layout
    (``features``, ``avgpool``, ``classifier``), the layout :func:`torchvision_layout`
    writes: what users who take the trunk elsewhere load it into."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _name, cin, cout, kernel, stride, padding, pool in CONVS:
            layers += [nn.Conv2d(cin, cout, kernel, stride, padding), nn.ReLU(inplace=True)]
            if pool:
                layers.append(nn.MaxPool2d(3, 2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def training_flops_per_image(model: nn.Module, device: torch.device | str = "cpu") -> int:
    """Floating-point operations of one training step per image (forward and backward),
    counted by ``torch.utils.flop_counter`` on a batch of two (so BatchNorm runs in
    training mode), matrix products and convolutions only, as MFU conventions count."""
    from torch.utils.flop_counter import FlopCounterMode

    inner = getattr(model, "_orig_mod", model)
    inner = getattr(inner, "module", inner)
    x = torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE, device=device)
    was_training = inner.training
    inner.train()
    with FlopCounterMode(display=False) as counter:
        inner(x).sum().backward()
    inner.zero_grad(set_to_none=True)
    inner.train(was_training)
    return counter.get_total_flops() // 2
