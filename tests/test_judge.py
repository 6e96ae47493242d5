"""The MNIST judge: deterministic training, cache keyed by data and config, corrupt caches rebuilt.

Cache behaviour is checked on a tiny judge (256 images, one epoch: a second or two); the
session's real-data judge (``small_judge``, 10,000 images) checks that it actually classifies.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import save_file

from igm.metrics.judge import JudgeConfig, cache_dir, data_hash, judge_key, mnist_judge


pytestmark = pytest.mark.usefixtures("one_thread")  # igm.testing's fixture

TINY = JudgeConfig(epochs=1, batch_size=64, max_train=256)


@pytest.fixture(scope="module")
def digits():
    """MNIST-shaped stand-ins: 300 train and 100 test images with class-dependent blobs."""
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(10, (400,), generator=gen)
    x = torch.rand(400, 1, 28, 28, generator=gen) * 0.2
    for k in range(10):  # a bright 4×4 square whose place encodes the class
        r, c = 2 + 2 * k, 2 + (k % 5) * 4
        x[y == k, :, r : r + 4, c : c + 4] = 1.0
    return x[:300], y[:300], x[300:], y[300:]


def judge(digits, cache, config=TINY):
    x, y, xt, yt = digits
    return mnist_judge(x, y, xt, yt, config, progress=False, cache=cache)


def weights(j) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in j.net.state_dict().items()}


def test_key_changes_with_the_data_and_the_config(digits):
    x, y, _, _ = digits
    base = judge_key(data_hash(x, y), TINY)
    x2 = x.clone()
    x2[7, 0, 3, 3] += 1e-3  # one pixel
    y2 = y.clone()
    y2[0] = (y2[0] + 1) % 10  # one label
    assert judge_key(data_hash(x2, y), TINY) != base
    assert judge_key(data_hash(x, y2), TINY) != base
    assert judge_key(data_hash(x[:-1], y[:-1]), TINY) != base
    for change in ({"seed": 1}, {"epochs": 2}, {"width": 8}, {"max_train": 255}, {"lr": 1e-3}):
        assert judge_key(data_hash(x, y), dataclasses.replace(TINY, **change)) != base, change
    assert judge_key(data_hash(x.clone(), y.clone()), JudgeConfig(**dataclasses.asdict(TINY))) == base


def test_second_call_loads_from_the_cache_and_changed_data_trains_anew(digits, tmp_path):
    first = judge(digits, tmp_path)
    assert first.trained and first.path is not None and first.path.parent == tmp_path / "judges"
    second = judge(digits, tmp_path)
    assert not second.trained and second.path == first.path
    assert second.test_accuracy == first.test_accuracy
    for k, v in weights(first).items():
        assert torch.equal(second.net.state_dict()[k], v)
    x, y, xt, yt = digits
    x2 = x.clone()
    x2[0] = 1 - x2[0]
    changed = mnist_judge(x2, y, xt, yt, TINY, progress=False, cache=tmp_path)
    assert changed.trained and changed.path != first.path
    assert len(list((tmp_path / "judges").glob("*.safetensors"))) == 2


def test_a_cached_judge_reports_its_accuracy_on_the_test_split_it_is_given(digits, tmp_path):
    """binarized-mnist shares mnist's training images (so its judge) but not its test split."""
    x, y, xt, yt = digits
    first = judge(digits, tmp_path)
    other_xt, other_yt = xt[:50].round(), yt[:50]  # the same images thresholded, half of them
    other = mnist_judge(x, y, other_xt, other_yt, TINY, progress=False, cache=tmp_path)
    assert not other.trained and other.path == first.path
    for k, v in weights(first).items():
        assert torch.equal(other.net.state_dict()[k], v)
    want = float((other.logits(other_xt).argmax(dim=1) == other_yt).double().mean())
    assert other.test_accuracy == pytest.approx(want)
    again = judge(digits, tmp_path)  # back on the split it was measured on: the stored figure
    assert not again.trained and again.test_accuracy == first.test_accuracy


def test_training_is_deterministic_from_the_seed(digits, tmp_path):
    a, b = judge(digits, tmp_path / "a"), judge(digits, tmp_path / "b")
    c = judge(digits, tmp_path / "c", dataclasses.replace(TINY, seed=1))
    assert all(torch.equal(v, b.net.state_dict()[k]) for k, v in weights(a).items())
    assert not all(torch.equal(v, c.net.state_dict()[k]) for k, v in weights(a).items())


def test_a_corrupt_or_foreign_cache_file_is_rebuilt(digits, tmp_path, capsys):
    good = judge(digits, tmp_path)
    reference = weights(good)
    good.path.write_bytes(good.path.read_bytes()[:100])  # truncated
    rebuilt = judge(digits, tmp_path)
    assert rebuilt.trained and "unusable" in capsys.readouterr().err
    assert all(torch.equal(v, rebuilt.net.state_dict()[k]) for k, v in reference.items())
    # a readable safetensors file with the wrong metadata or tensors is not trusted either
    save_file({"w": torch.zeros(3)}, str(good.path), metadata={"igm.judge.key": good.key, "igm.judge.format": "1"})
    assert judge(digits, tmp_path).trained
    assert not judge(digits, tmp_path).trained  # and the rebuilt file is good again


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IGM_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("IGM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    if cache_dir().parent == tmp_path / "x":  # linux and friends
        assert cache_dir() == tmp_path / "x" / "igm"


def test_the_session_judge_classifies_real_digits(small_judge):
    judge_, splits, _ = small_judge
    assert judge_.test_accuracy > 0.95  # 10,000 images, 2 epochs; the full judge reaches > 0.99
    assert judge_.accuracy(splits.x_test[:2000], splits.y_test[:2000]) > 0.95
    probs = judge_.probs(splits.x_test[:100])
    assert probs.shape == (100, 10) and torch.allclose(probs.sum(1), torch.ones(100))
    assert judge_.features(splits.x_test[:5]).shape == (5, 128)
    with pytest.raises(ValueError, match="28"):
        judge_.probs(torch.zeros(2, 3, 28, 28))


def test_training_shifts_translate_each_image_within_the_border():
    from igm.metrics.judge import _shifted

    x = torch.zeros(50, 1, 28, 28)
    x[:, 0, 10:18, 9:19] = torch.rand(50, 8, 10)  # content away from the border
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(_shifted(x, 0, gen), x)
    moved = _shifted(x, 2, gen)
    seen = set()
    for i in range(50):  # each image is its original rolled by one (dy, dx) in [-2, 2]²
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(moved[i], x[i].roll((dy, dx), (1, 2)))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 10  # and the offsets vary
