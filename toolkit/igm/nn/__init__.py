"""Shared network backbones that model plugins build on.

    from igm.nn import MLP, DCGANGenerator, DCGANDiscriminator, ConvEncoder, ConvDecoder, one_hot

``MLP`` covers generators and critics for points and flat vectors (ReLU, LeakyReLU, tanh,
ELU or maxout layers, optional BatchNorm, optional class conditioning); the DCGAN pair covers
8x8, 28x28 and 32x32 images; ``ConvEncoder``/``ConvDecoder`` are a VAE's pair for square
images. Every network takes ``(x, labels=None)`` and critics return logits of shape ``(N,)``.
``one_hot(labels, num_classes)`` turns integer labels into floats.

Which backbone a config asks for on given data (``network="auto"``, ``latent_dim=0``, the
generator and critic of a resolved config) is :mod:`igm.nn.factory`.
"""

from igm.nn.conv_vae import ConvDecoder, ConvEncoder
from igm.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from igm.nn.mlp import MLP, one_hot

__all__ = ["MLP", "DCGANGenerator", "DCGANDiscriminator", "ConvEncoder", "ConvDecoder", "one_hot"]
