"""Shapes and wiring of the shared backbones in igm.nn (MLP, DCGAN generator/discriminator)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from igm.nn import MLP, DCGANDiscriminator, DCGANGenerator, one_hot

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def spatial_sizes(net: nn.Module, x: torch.Tensor, kinds: tuple[type, ...], *args) -> list[tuple[int, int]]:
    """(H, W) of the output of every layer of the given kinds, in call order."""
    sizes: list[tuple[int, int]] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[-2:])))
        for m in net.modules()
        if isinstance(m, kinds)
    ]
    try:
        net(x, *args)
    finally:
        for h in hooks:
            h.remove()
    return sizes


# --------------------------------------------------------------------------------------------- MLP


def test_mlp_sig_generator_and_critic_shapes():
    G = MLP((10,), (2,), [100, 100])
    D = MLP((2,), (), [100])
    x = G(torch.randn(7, 10))
    assert x.shape == (7, 2)
    assert D(x).shape == (7,)
    assert len([m for m in G.modules() if isinstance(m, nn.Linear)]) == 3


def test_mlp_pacgan_batchnorm_generator_and_maxout_critic():
    G = MLP((2,), (2,), [400] * 4, batchnorm=True)
    assert len([m for m in G.modules() if isinstance(m, nn.BatchNorm1d)]) == 4
    assert G(torch.randn(16, 2)).shape == (16, 2)
    D = MLP((4,), (), [200] * 3, activation="maxout", maxout_pieces=5)
    first = next(m for m in D.modules() if isinstance(m, nn.Linear))
    assert first.out_features == 200 * 5
    assert D(torch.randn(16, 4)).shape == (16,)
    Dbn = MLP((4,), (), [20] * 2, activation="maxout", maxout_pieces=3, batchnorm=True)
    assert Dbn(torch.randn(5, 4)).shape == (5,)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "elu", "maxout"])
def test_mlp_multidim_shapes(activation):
    m = MLP((2, 3), (1, 4, 4), [8, 8], activation=activation, out_activation="sigmoid")
    y = m(torch.randn(5, 2, 3))
    assert y.shape == (5, 1, 4, 4)
    assert ((y > 0) & (y < 1)).all()


def test_mlp_conditional_output_depends_on_label():
    torch.manual_seed(0)
    m = MLP((3,), (2,), [16], num_classes=4).eval()
    z = torch.randn(1, 3).repeat(4, 1)
    y = m(z, torch.arange(4))
    assert y.shape == (4, 2)
    assert not torch.allclose(y[0], y[1])
    assert torch.allclose(m(z[:1], torch.tensor([2])), y[2:3])
    with pytest.raises(ValueError, match="labels"):
        m(z)


def test_mlp_rejects_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        MLP((2,), (2,), [4], activation="swish")
    with pytest.raises(ValueError, match="out_activation"):
        MLP((2,), (2,), [4], out_activation="relu")
    with pytest.raises(ValueError, match="shape"):
        MLP((2,), (2,), [4])(torch.randn(3, 5))
    with pytest.raises(ValueError, match="labels"):
        MLP((2,), (2,), [4], num_classes=3)(torch.randn(3, 2), torch.tensor([0, 1, 5]))


def test_one_hot():
    y = one_hot(torch.tensor([2, 0]), 3)
    assert y.dtype == torch.float32
    assert y.tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    soft = torch.full((2, 3), 1 / 3)
    assert torch.equal(one_hot(soft, 3), soft)
    with pytest.raises(ValueError):
        one_hot(torch.tensor([0.5, 1.0]), 3)


# --------------------------------------------------------------------------------------------- DCGAN


@pytest.mark.parametrize(("size", "layout"), [(8, "standard"), (28, "standard"), (28, "sig"), (32, "standard")])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("width", [0.5, 1.0, 2.0])
def test_dcgan_shapes(size, layout, channels, width):
    G = DCGANGenerator(12, (channels, size, size), width=width, layout=layout)
    D = DCGANDiscriminator((channels, size, size), width=width, layout=layout)
    x = G(torch.randn(3, 12))
    assert x.shape == (3, channels, size, size)
    assert ((x >= 0) & (x <= 1)).all()  # default sigmoid
    assert D(x).shape == (3,)


@pytest.mark.parametrize(("size", "layout"), [(8, "standard"), (28, "standard"), (28, "sig"), (32, "standard")])
def test_dcgan_conditional(size, layout):
    torch.manual_seed(0)
    G = DCGANGenerator(6, (3, size, size), num_classes=5, out_activation="tanh", layout=layout).eval()
    D = DCGANDiscriminator((3, size, size), num_classes=5, layout=layout).eval()
    labels = torch.tensor([0, 1, 2, 3])
    z = torch.randn(1, 6).repeat(4, 1)
    x = G(z, labels)
    assert x.shape == (4, 3, size, size)
    assert x.min() >= -1 and x.max() <= 1
    assert not torch.allclose(x[0], x[1])
    logits = D(x[:1].repeat(4, 1, 1, 1), labels)
    assert logits.shape == (4,)
    assert not torch.allclose(logits[0], logits[1])
    with pytest.raises(ValueError, match="labels"):
        G(z)
    with pytest.raises(ValueError, match="labels"):
        D(x)


@pytest.mark.parametrize(("size", "layout"), [(8, "standard"), (28, "standard"), (28, "sig"), (32, "standard")])
def test_projection_discriminator_adds_the_label_embedding_dotted_with_the_features(size, layout):
    """Known answer (Miyato & Koyama 2018): logit(x, y) = w·φ(x) + b + (E y)·φ(x), with φ the last layer's input.

    The unconditional part is the plain discriminator's network (same parameters), the label enters
    nowhere else, and a soft label gives the mixture of the one-hot logits (the logit is linear in y).
    """
    torch.manual_seed(0)
    D = DCGANDiscriminator((3, size, size), num_classes=5, layout=layout, projection=True).eval()
    plain = DCGANDiscriminator((3, size, size), layout=layout).eval()
    plain.load_state_dict({k: v for k, v in D.state_dict().items() if not k.startswith("embed.")})
    assert set(D.state_dict()) - set(plain.state_dict()) == {"embed.weight"}
    x0 = torch.rand(2, 3, size, size)
    torch.testing.assert_close(D(x0, torch.tensor([0, 4])), plain(x0))  # E starts at 0: the plain critic
    with torch.no_grad():
        D.embed.weight.normal_()
    x = torch.rand(4, 3, size, size, dtype=torch.float64)
    D, plain = D.double(), plain.double()
    labels = torch.tensor([0, 3, 3, 4])
    phi = D.net[:-2](x)  # (N, F)
    want = plain(x) + torch.einsum("nf,fn->n", phi, D.embed.weight[:, labels])
    torch.testing.assert_close(D(x, labels), want)
    soft = torch.tensor([[0.25, 0.0, 0.0, 0.75, 0.0]] * 4, dtype=torch.float64)
    mix = 0.25 * D(x, torch.zeros(4, dtype=torch.long)) + 0.75 * D(x, torch.full((4,), 3))
    torch.testing.assert_close(D(x, soft), mix)
    with pytest.raises(ValueError, match="labels"):
        D(x)
    with pytest.raises(ValueError, match="needs num_classes"):
        DCGANDiscriminator((3, size, size), layout=layout, projection=True)


@pytest.mark.parametrize(("size", "layout"), [(8, "standard"), (28, "standard"), (28, "sig"), (32, "standard")])
def test_class_norm_generator_scales_and_shifts_each_batchnorm_by_the_labels_own_gain_and_bias(size, layout):
    """Known answer: every BatchNorm becomes (1 + γ_y)·BN(x) + β_y; at γ = β = 0 it is the plain generator.

    The plain conditional generator's parameters are the class-norm one's minus γ and β, and its BatchNorms
    have unit gain and no bias; in float64 each ClassBatchNorm2d's output is checked against the formula.
    """
    from igm.nn.dcgan import ClassBatchNorm2d

    torch.manual_seed(0)
    G = DCGANGenerator(6, (3, size, size), num_classes=5, out_activation="tanh", layout=layout, class_norm=True).double()
    plain = DCGANGenerator(6, (3, size, size), num_classes=5, out_activation="tanh", layout=layout).double()
    extra = {k for k in G.state_dict() if k.endswith((".gain.weight", ".bias.weight"))}
    plain.load_state_dict({k.replace(".norm.", "."): v for k, v in G.state_dict().items() if k not in extra}, strict=False)
    z, labels = torch.randn(8, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    torch.testing.assert_close(G(z, labels), plain(z, labels))  # γ = β = 0: the plain generator (train mode)
    norms = [m for m in G.net if isinstance(m, ClassBatchNorm2d)]
    assert len(norms) == sum(isinstance(m, nn.BatchNorm2d) for m in plain.net) > 0
    with torch.no_grad():
        for m in norms:
            m.gain.weight.normal_()
            m.bias.weight.normal_()
    seen = []
    hooks = [m.register_forward_hook(lambda m, args, out: seen.append((m, *args, out))) for m in norms]
    G(z, labels)
    for h in hooks:
        h.remove()
    for m, x, y, out in seen:
        mean, var = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        bn = (x - mean) / torch.sqrt(var + m.norm.eps)
        gamma, beta = m.gain.weight[:, labels].T, m.bias.weight[:, labels].T  # (N, C)
        torch.testing.assert_close(out, (1 + gamma[:, :, None, None]) * bn + beta[:, :, None, None])
    with pytest.raises(ValueError, match="needs num_classes"):
        DCGANGenerator(6, (3, size, size), layout=layout, class_norm=True)


def test_dcgan28_generator_intermediate_sizes():
    G = DCGANGenerator(10, (1, 28, 28), layout="sig")
    sizes = spatial_sizes(G, torch.randn(2, 10), (nn.ConvTranspose2d, nn.Conv2d))
    assert sizes == [(7, 7), (14, 14), (14, 14), (28, 28)]
    convs = [m for m in G.modules() if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d))]
    assert [c.out_channels for c in convs] == [64, 32, 8, 1]
    assert isinstance(convs[2], nn.Conv2d) and convs[2].padding == "same"


def test_dcgan28_discriminator_intermediate_sizes():
    D = DCGANDiscriminator((1, 28, 28), layout="sig")
    sizes = spatial_sizes(D, torch.randn(2, 1, 28, 28), (nn.Conv2d,))
    assert sizes == [(13, 13), (7, 7), (7, 7)]
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 32]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())


def test_dcgan28_paper_sizes_scale_channels():
    # S, M, L = (Kg, Kd) = (1, 0.5), (1, 1), (2, 1)
    g_m, g_l = (DCGANGenerator(10, (1, 28, 28), w, layout="sig") for w in (1.0, 2.0))
    convs_l = [m for m in g_l.modules() if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d))]
    assert [c.out_channels for c in convs_l] == [128, 64, 16, 1]
    assert n_params(g_l) > 2 * n_params(g_m)
    d_s = DCGANDiscriminator((1, 28, 28), 0.5, layout="sig")
    assert [c.out_channels for c in d_s.modules() if isinstance(c, nn.Conv2d)] == [4, 8, 16]
    assert n_params(d_s) < n_params(DCGANDiscriminator((1, 28, 28), 1.0, layout="sig"))
    tiny = DCGANDiscriminator((1, 28, 28), 0.01, layout="sig")  # rounds to at least one channel
    assert [c.out_channels for c in tiny.modules() if isinstance(c, nn.Conv2d)] == [1, 1, 1]
    assert tiny(torch.randn(2, 1, 28, 28)).shape == (2,)


def test_dcgan_doubling_intermediate_sizes():
    G32 = DCGANGenerator(10, (3, 32, 32))
    assert spatial_sizes(G32, torch.randn(2, 10), (nn.ConvTranspose2d,)) == [(8, 8), (16, 16), (32, 32)]
    D32 = DCGANDiscriminator((3, 32, 32))
    assert spatial_sizes(D32, torch.randn(2, 3, 32, 32), (nn.Conv2d,)) == [(16, 16), (8, 8), (4, 4)]
    G8 = DCGANGenerator(10, (1, 8, 8))
    assert spatial_sizes(G8, torch.randn(2, 10), (nn.ConvTranspose2d,)) == [(4, 4), (8, 8)]
    D8 = DCGANDiscriminator((1, 8, 8))
    assert spatial_sizes(D8, torch.randn(2, 1, 8, 8), (nn.Conv2d,)) == [(4, 4), (2, 2)]


def test_dcgan28_standard_layout_is_the_radford_dcgan():
    # linear to 128 x 7 x 7, then two stride-2 transposed convs: 128 -> 64 -> C; the critic mirrors it
    G = DCGANGenerator(10, (1, 28, 28))
    assert spatial_sizes(G, torch.randn(2, 10), (nn.ConvTranspose2d,)) == [(14, 14), (28, 28)]
    assert [m.out_channels for m in G.modules() if isinstance(m, nn.ConvTranspose2d)] == [64, 1]
    assert [m.out_features for m in G.modules() if isinstance(m, nn.Linear)] == [128 * 7 * 7]
    D = DCGANDiscriminator((3, 28, 28), width=0.5)
    assert spatial_sizes(D, torch.randn(2, 3, 28, 28), (nn.Conv2d,)) == [(14, 14), (7, 7)]
    assert [m.out_channels for m in D.modules() if isinstance(m, nn.Conv2d)] == [32, 64]


def test_models_build_the_dcgan_layout_they_are_asked_for():
    # network=dcgan (and auto on images) is the standard 28x28 pair; sig-dcgan the SIG paper's (Q2)
    from igm.testing import build_model, toy_images

    info = toy_images(4, (1, 28, 28)).info

    def channels(model, kind):
        return [m.out_channels for m in model.modules() if isinstance(m, kind)]

    for network in ("dcgan", "auto"):
        m = build_model("gan", info, {"network": network})
        assert channels(m.critic, nn.Conv2d) == [64, 128]
        assert channels(m.generator, nn.ConvTranspose2d) == [64, 1]
    paper = build_model("gan", info, {"network": "sig-dcgan"})
    assert channels(paper.critic, nn.Conv2d) == channels(DCGANDiscriminator((1, 28, 28), layout="sig"), nn.Conv2d)
    assert channels(paper.generator, nn.ConvTranspose2d) == channels(
        DCGANGenerator(256, (1, 28, 28), layout="sig"), nn.ConvTranspose2d
    )
    assert channels(paper.critic, nn.Conv2d) != [64, 128]


def test_dcgan_layout_is_checked():
    with pytest.raises(ValueError, match="layout must be one of standard, sig"):
        DCGANGenerator(10, (1, 28, 28), layout="paper")
    with pytest.raises(ValueError, match="for 28x28 images, got 32x32"):
        DCGANDiscriminator((3, 32, 32), layout="sig")


def test_dcgan_discriminator_is_per_example():
    D = DCGANDiscriminator((1, 28, 28)).train()
    x = torch.randn(4, 1, 28, 28)
    assert torch.allclose(D(x)[:1], D(x[:1]), atol=1e-6)
    Dbn = DCGANDiscriminator((1, 28, 28), batchnorm=True)
    assert any(isinstance(m, nn.BatchNorm2d) for m in Dbn.modules())


@pytest.mark.parametrize("shape", [(1, 16, 16), (2, 28, 28), (3, 28, 32), (1, 64, 64), (28, 28)])
def test_dcgan_bad_sizes_raise(shape):
    with pytest.raises(ValueError, match="8, 28, 32"):
        DCGANGenerator(10, shape)
    with pytest.raises(ValueError, match="8, 28, 32"):
        DCGANDiscriminator(shape)


def test_dcgan_bad_inputs_raise():
    with pytest.raises(ValueError, match="z of shape"):
        DCGANGenerator(10, (1, 8, 8))(torch.randn(2, 11))
    with pytest.raises(ValueError, match="images of shape"):
        DCGANDiscriminator((1, 8, 8))(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="out_activation"):
        DCGANGenerator(10, (1, 8, 8), out_activation="relu")
    with pytest.raises(ValueError, match="width"):
        DCGANGenerator(10, (1, 8, 8), width=0)
