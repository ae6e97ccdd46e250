"""The mask network: layer sizes, FLOP count, plain names, loading into and from other
AlexNet layouts."""

import pytest
import torch

from fastunlc.training.model import (
    CONVS,
    MaskAlexNet,
    PlainAlexNet,
    fold_batch_norm,
    load_trunk,
    plain_state_dict,
    torchvision_layout,
    training_flops_per_image,
)


def randomise_batch_norm(model: MaskAlexNet) -> None:
    """Statistics and affine values far from the identity, as after training."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(generator=generator)
            module.running_var.uniform_(0.5, 2.0, generator=generator)
            module.weight.data.uniform_(0.5, 1.5, generator=generator)
            module.bias.data.normal_(generator=generator)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_shapes_follow_alexnet(batch_norm):
    model = MaskAlexNet(batch_norm).eval()
    x = torch.zeros(2, 3, 227, 227)
    expected = {"conv1": (96, 27, 27), "conv2": (256, 13, 13), "conv3": (384, 13, 13),
                "conv4": (384, 13, 13), "conv5": (256, 6, 6), "fc6": (4096,), "fc7": (4096,)}
    for layer, shape in expected.items():
        assert model.features(x, layer).shape == (2, *shape)
    assert model(x).shape == (2, 56, 56)
    probabilities = model.predict(torch.randn(2, 3, 227, 227))
    assert probabilities.min() >= 0 and probabilities.max() <= 1
    assert model.conv1.weight.shape == (96, 3, 11, 11) and model.conv1.stride == (4, 4)
    assert model.mask.weight.shape == (3136, 4096)


def test_flops_are_counted_from_the_layers():
    """Twice the multiply-accumulates of every convolution and linear layer, times three
    for forward and backward, from the layer sizes written out by hand."""
    side = {"conv1": 55, "conv2": 27, "conv3": 13, "conv4": 13, "conv5": 13}
    macs = sum(cout * cin * k * k * side[name] ** 2 for name, cin, cout, k, *_ in CONVS)
    macs += 9216 * 4096 + 4096 * 4096 + 4096 * 3136
    # conv1's input gradient is not needed (the input does not require it): 2 passes there.
    conv1 = 96 * 3 * 11 * 11 * 55 ** 2
    expected = 2 * (3 * macs - conv1)
    assert training_flops_per_image(MaskAlexNet()) == expected


def test_state_dict_uses_plain_layer_names():
    names = {name.split(".")[0] for name in MaskAlexNet(batch_norm=True).state_dict()}
    assert names == {"conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "mask",
                     "conv1_bn", "conv2_bn", "conv3_bn", "conv4_bn", "conv5_bn"}


def test_wrapped_models_save_plain_names():
    model = MaskAlexNet()
    wrapped = torch.nn.Module()
    wrapped.module = model
    assert plain_state_dict(wrapped).keys() == model.state_dict().keys()


def test_torchvision_layout_round_trip_and_plain_alexnet():
    """A plain-named trunk renamed to torchvision's layout loads into a plain AlexNet and
    computes the same conv5 features; loading it back gives the same weights."""
    source = MaskAlexNet().eval()
    plain = PlainAlexNet()
    missing = plain.load_state_dict(torchvision_layout(plain_state_dict(source)), strict=False)
    assert missing.missing_keys == ["classifier.6.weight", "classifier.6.bias"]
    plain.eval()
    x = torch.randn(2, 3, 227, 227)
    torch.testing.assert_close(plain.features(x), source.features(x, "conv5"))
    target = MaskAlexNet()
    loaded = load_trunk(target, plain.state_dict())
    assert loaded == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
    for layer in loaded:
        torch.testing.assert_close(getattr(target, layer).weight, getattr(source, layer).weight)


def test_batch_norm_folds_into_a_plain_alexnet():
    model = MaskAlexNet(batch_norm=True)
    randomise_batch_norm(model)
    model.eval()
    plain = PlainAlexNet()
    plain.load_state_dict(torchvision_layout(plain_state_dict(model)), strict=False)
    plain.eval()
    x = torch.randn(2, 3, 227, 227)
    with torch.no_grad():
        expected = model.features(x, "conv5")
    torch.testing.assert_close(plain.features(x), expected,
                               atol=1e-4 * float(expected.abs().max()),
                               rtol=1e-4)
    assert not any("_bn." in name for name in fold_batch_norm(model.state_dict()))


def test_load_trunk_refuses_other_shapes_and_foreign_dicts():
    import torchvision

    with pytest.raises(ValueError, match=r"features\.0\.weight: shape"):
        load_trunk(MaskAlexNet(), torchvision.models.alexnet().state_dict())  # 64 channels
    with pytest.raises(ValueError, match="no AlexNet trunk layer"):
        load_trunk(MaskAlexNet(), {"head.weight": torch.zeros(3)})
    with pytest.raises(ValueError, match="dropout"):
        MaskAlexNet(dropout=1.0)
