import pytest
import torch

from fabrec import FabRec
from fabrec.checkpoint import load_matching
from fabrec.errors import FabrecError
from fabrec.nn import Encoder, Generator, ImageDiscriminator, LatentDiscriminator, TransferLayers


def count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_reference_parameter_counts_at_256() -> None:
    m = FabRec(image_size=256, num_landmarks=68)
    assert count(m.encoder) == 11_379_491
    assert count(m.generator) == 10_868_096
    assert count(LatentDiscriminator()) == 1_102_001
    assert count(ImageDiscriminator()) == 1_743_744
    # ITLs: four 3x3 convs (~0.81 M) + a 4x4 transposed conv of 1,024 * L parameters
    assert count(m.itl) == 811_008 + 1024 * 68


def test_encoder_128_is_plain_resnet18_plus_latent() -> None:
    # torchvision's ResNet-18 without its fc has 11,176,512 parameters; + linear 512 -> 99
    assert count(Encoder(128)) == 11_176_512 + 512 * 99 + 99


@pytest.mark.parametrize("size,heat", [(64, 64), (128, 128), (256, 128)])
def test_shapes(size: int, heat: int) -> None:
    m = FabRec(image_size=size, num_landmarks=5, width=0.125)
    x = torch.randn(2, 3, size, size)
    out = m(x, reconstruct=True)
    assert out.z.shape == (2, 99)
    assert out.reconstruction.shape == (2, 3, size, size)
    assert out.heatmaps.shape == (2, 5, heat, heat)
    assert m.reconstruct(x).shape == (2, 3, size, size)
    assert m.decode(m.encode(x)).shape == (2, 3, size, size)
    assert ImageDiscriminator()(x).shape == (2,)
    assert out.reconstruction.abs().max() <= 1.0  # tanh


def test_transfer_layers_take_generator_explicitly_and_any_landmark_count() -> None:
    g = Generator(128, width=0.125).eval()
    z = torch.randn(1, 99)
    for k in (1, 19, 98, 7):
        itl = TransferLayers(128, k, width=0.125)
        assert itl(g, z).shape == (1, k, 128, 128)
    assert not hasattr(g, "itl")  # nothing left on the generator


def test_itl_subset_and_bad_index() -> None:
    itl = TransferLayers(128, 3, width=0.125, active=(3, 4))
    trainable = [i for i, l in enumerate(itl.layers, 1) if l.weight.requires_grad]
    assert trainable == [3, 4]
    with pytest.raises(ValueError):
        TransferLayers(128, 3, width=0.125, active=(5,))


def test_growth_128_to_256_loads_every_old_tensor() -> None:
    small, big = Encoder(128, width=0.125), Encoder(256, width=0.125)
    new = load_matching(big, small.state_dict(), "enc")
    assert new and all(k.startswith("layer0.") or k.startswith("layer1.0.downsample") for k in new)
    torch.testing.assert_close(big.layer4[1].conv2.weight, small.layer4[1].conv2.weight)
    g_small, g_big = Generator(128, width=0.125), Generator(256, width=0.125)
    new_g = load_matching(g_big, g_small.state_dict(), "gen")
    assert new_g and all(k.startswith("blocks.4.") for k in new_g)


def test_mismatched_widths_refuse_to_load() -> None:
    with pytest.raises(FabrecError, match="shapes differ"):
        load_matching(Encoder(128, width=0.25), Encoder(128, width=0.125).state_dict(), "enc")


def test_folding_batchnorm_keeps_the_outputs_and_leaves_the_original_alone() -> None:
    from fabrec.nn.fold import fold_batchnorm

    torch.manual_seed(0)
    m = FabRec(image_size=64, num_landmarks=5, width=0.125)
    for bn in (x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)):  # trained-looking statistics
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    m.eval()
    f = fold_batchnorm(m)
    bns = lambda net: sum(isinstance(x, torch.nn.BatchNorm2d) for x in net.modules())  # noqa: E731
    assert bns(f.encoder) == 0 and bns(f.generator) == 0
    assert bns(m.encoder) > 0  # the original keeps its BatchNorms
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(f.heatmaps(x), m.heatmaps(x), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(f(x, reconstruct=True).reconstruction, m(x, reconstruct=True).reconstruction,
                                   atol=1e-4, rtol=1e-4)
