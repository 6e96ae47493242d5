"""Subnormals flushed to zero while training: the mode inside and after, Adam's steps unchanged, the trainer's use."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from igm.models import Player
from igm.subnormals import flush_subnormals, flushing
from igm.testing import build_model, toy_points
from igm.trainer import RunConfig, Trainer

TINY = torch.finfo(torch.float32).tiny  # 2**-126, the smallest normal float32


def half_tiny() -> float:
    return (torch.tensor(TINY) / 2).item()


def test_subnormal_results_are_zero_inside_and_kept_after():
    assert not flushing()
    assert half_tiny() == 2.0**-127
    with flush_subnormals():
        assert flushing()
        assert half_tiny() == 0.0
        assert (torch.tensor(TINY) * 2).item() == 2.0**-125  # normal results are untouched
    assert not flushing()
    assert half_tiny() == 2.0**-127


def test_the_mode_is_read_in_float32_whatever_the_default_dtype():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # half of float32's tiny is a normal float64
    try:
        with flush_subnormals():
            assert flushing()
        assert not flushing()
    finally:
        torch.set_default_dtype(before)


def test_nested_blocks_and_an_error_restore_the_mode():
    with flush_subnormals():
        with flush_subnormals(False):
            assert not flushing()
        assert flushing()
        with pytest.raises(RuntimeError, match="boom"):
            with flush_subnormals(False):
                raise RuntimeError("boom")
        assert flushing()
    assert not flushing()


def adam_with_vanishing_gradients(flush: bool) -> tuple[torch.Tensor, bool]:
    """Adam on a parameter whose gradient is 0 after 5 steps, 400 steps in all: the final parameter,
    and whether a moment of Adam's state was ever subnormal."""
    torch.manual_seed(0)
    weight = nn.Parameter(torch.randn(64, 8))
    opt = Player("p", [weight], lr=1e-2, betas=(0.5, 0.9)).make_optimizer()
    grads = torch.randn(5, 64, 8)
    subnormal = False
    with flush_subnormals(flush):
        for t in range(400):
            weight.grad = grads[t] if t < 5 else torch.zeros(64, 8)
            opt.step()
            for v in opt.state[weight].values():
                if v.is_floating_point():
                    subnormal |= bool(((v != 0) & (v.abs() < TINY)).any())
    return weight.detach().clone(), subnormal


def test_adam_takes_the_same_steps_when_its_decaying_moments_are_flushed():
    kept, kept_subnormal = adam_with_vanishing_gradients(False)
    flushed, flushed_subnormal = adam_with_vanishing_gradients(True)
    assert kept_subnormal  # kept, the moments pass through the slow range on their way to 0 ...
    assert not flushed_subnormal  # ... flushed, they go straight to 0
    assert torch.equal(kept, flushed)  # and the parameter takes the very same steps


@pytest.mark.parametrize("flush", [True, False])
def test_the_trainer_flushes_while_it_trains_unless_told_not_to(flush):
    data = toy_points()
    model = build_model("gan", data.info)
    seen: list[bool] = []
    loss = model.loss
    model.loss = lambda player, batch: (seen.append(flushing()), loss(player, batch))[1]  # records the mode
    run = RunConfig(steps=3, batch_size=8, log_every=1, sample_every=0, checkpoint_every=0, device="cpu",
                    flush_subnormals=flush)
    assert RunConfig().flush_subnormals  # the default
    Trainer(model, data, run, progress=False).fit()
    assert seen == [flush] * 6  # critic and generator, 3 steps
    assert not flushing()  # the thread's mode is as it was before the run
