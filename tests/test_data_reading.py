"""What a user's own data reads as (issue 15): npz reading rules, classes, memory limits, paths.

Every file is made here, small, in tmp_path.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from igm.data import DataInfo, describe, open_data, reopen_data
from igm.errors import ConfigError, DataError
from igm.limits import check_allocation, memory_budget, parse_bytes

GAPPY = np.array([0, 1, 3, 4, 5, 7, 8, 9])


def save(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return f"npz:{path}"


# --- the reading rule ---------------------------------------------------------------------------


def test_binary_uint8_is_kept_as_0_1_and_marked_binary(tmp_path: Path) -> None:
    x = (np.random.default_rng(0).random((40, 6, 6)) < 0.3).astype(np.uint8)
    source = open_data(save(tmp_path / "b.npz", x=x))
    got, _ = source.split("train")
    assert torch.equal(got[:, 0], torch.from_numpy(x).float())  # 0/1, never 0/0.0039
    assert source.info.binary and source.info.value_range == (0.0, 1.0)
    line = describe(source)
    assert line.startswith(f"read npz:{tmp_path / 'b.npz'}: 40 train examples, image (1, 6, 6)")
    assert "uint8 0/1 kept (binary)" in line and "values 0..1" in line and "unlabelled" in line


@pytest.mark.parametrize("dtype", [np.bool_, np.int64, np.float32, np.float64])
def test_0_1_data_of_any_dtype_is_binary(tmp_path: Path, dtype) -> None:
    x = (np.arange(60).reshape(20, 3) % 2).astype(dtype)
    info = open_data(save(tmp_path / "b.npz", x=x)).info
    assert info.binary and info.value_range == (0.0, 1.0)


def test_uint8_0_255_scales_and_black_white_is_binary(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(0, 256, (30, 4, 4)).astype(np.uint8)
    source = open_data(save(tmp_path / "g.npz", x=x))
    assert torch.allclose(source.split("train")[0][:, 0], torch.from_numpy(x).float() / 255)
    assert not source.info.binary
    assert "uint8 scaled by 1/255 to [0, 1]" in describe(source)
    bw = open_data(save(tmp_path / "bw.npz", x=(x > 127).astype(np.uint8) * 255)).info
    assert bw.binary


def test_floats_are_kept_and_other_data_is_not_binary(tmp_path: Path) -> None:
    x = np.linspace(-3, 5, 50, dtype=np.float64).reshape(25, 2)
    source = open_data(save(tmp_path / "f.npz", x=x))
    assert torch.allclose(source.split("train")[0], torch.from_numpy(x).float())
    assert not source.info.binary and source.info.value_range is None
    assert "float64 kept as is, values -3..5" in describe(source)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.tile(np.arange(4, dtype=np.uint8), (10, 1)), r"uint8 with values 0\.\.3, nearly constant"),
        (np.full((10, 3), 0.5), "every value of 'x' .* is 0.5: constant"),
        (np.ones((10, 3), dtype=np.longdouble), "dtype float128: store real numbers"),
        (np.zeros((10, 0), dtype=np.float32), r"shape \(10, 0\): its examples hold no values"),
        (np.zeros((0, 3), dtype=np.float32), "holds no examples"),
        (np.array([[1.0, np.nan]] * 3), "NaN or infinite"),
        (np.array([[1e300, 0.0]] * 3), "too large for float32"),
        (np.ones((3, 2), dtype=np.complex64), "dtype complex64"),
    ],
)
def test_data_that_would_mislead_is_a_one_line_error(tmp_path: Path, x, message) -> None:
    with pytest.raises(DataError, match=message) as err:
        open_data(save(tmp_path / "bad.npz", x=x))
    assert "\n" not in str(err.value)


# --- classes are the labels present ------------------------------------------------------------


def test_gappy_labels_make_the_classes_present_and_keep_the_mapping(tmp_path: Path) -> None:
    y = np.tile(GAPPY, 5)  # 40 labels, 8 classes
    x = np.random.default_rng(0).random((40, 3)).astype(np.float32)
    source = open_data(save(tmp_path / "g.npz", x=x, y=y, x_test=x[:8], y_test=GAPPY[::-1].copy()))
    info = source.info
    assert info.num_classes == 8 and info.class_values == tuple(GAPPY)
    assert info.labels() == list(GAPPY)
    _, yt = source.split("train")
    assert yt.tolist() == list(range(8)) * 5
    assert source.split("test")[1].tolist() == list(range(7, -1, -1))
    assert info.class_index(7) == 5 and info.class_index("9") == 7
    with pytest.raises(DataError, match="label 2 is not a class .*use one of 0, 1, 3, 4, 5, 7, 8, 9"):
        info.class_index(2)
    assert "8 classes: 0, 1, 3, 4, 5, 7, 8, 9" in describe(source)
    back = DataInfo.from_json(info.to_json())
    assert back == info


@pytest.mark.parametrize("label", [10**9, 2**62, np.uint64(2**64 - 1)])
def test_huge_labels_are_just_names_of_classes(tmp_path: Path, label) -> None:
    y = np.array([0, label, 0, label], dtype=np.asarray(label).dtype if isinstance(label, np.generic) else np.int64)
    info = open_data(save(tmp_path / "h.npz", x=np.arange(8.0).reshape(4, 2), y=y)).info
    assert info.num_classes == 2 and info.class_values == (0, int(label))
    assert json.loads(info.to_json())["class_values"] == [0, int(label)]


def test_whole_float_labels_are_accepted(tmp_path: Path) -> None:
    info = open_data(save(tmp_path / "w.npz", x=np.arange(8.0).reshape(4, 2), y=np.array([2.0, 4.0, 2.0, 4.0]))).info
    assert info.class_values == (2, 4)


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.array([0.0, 1.5, 1.0, 0.0]), "non-integer values"),
        (np.array([0, -1, 1, 0]), "negative values"),
        (np.array(["a", "b", "a", "b"]), "dtype <U1: store integer class labels"),
        (np.array([0.0, np.nan, 1.0, 0.0]), "non-integer values"),
    ],
)
def test_bad_labels_are_a_one_line_error(tmp_path: Path, y, message) -> None:
    with pytest.raises(DataError, match=message):
        open_data(save(tmp_path / "l.npz", x=np.arange(8.0).reshape(4, 2), y=y))


def test_test_labels_unseen_in_training_are_an_error(tmp_path: Path) -> None:
    x = np.arange(8.0).reshape(4, 2)
    with pytest.raises(DataError, match=r"labels the training split lacks \(6\)"):
        open_data(save(tmp_path / "u.npz", x=x, y=np.array([0, 1, 0, 1]), x_test=x, y_test=np.array([0, 6, 1, 1])))


def test_old_checkpoint_data_json_still_reads() -> None:
    old = '{"event_shape": [2], "extra": {}, "kind": "points", "name": "grid25", "num_classes": 25, "value_range": null}'
    info = DataInfo.from_json(old)
    assert info.class_values is None and info.resolved is None and info.labels() == list(range(25))
    newer = json.loads(info.to_json()) | {"a_field_from_the_future": 1}
    assert DataInfo.from_json(json.dumps(newer)) == info


# --- memory limits -------------------------------------------------------------------------------


def test_parse_bytes_and_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_bytes("512M") == 512 << 20 and parse_bytes("8G") == 8 << 30 and parse_bytes("1.5k") == 1536
    assert parse_bytes("100") == 100 and parse_bytes("2 GiB") == 2 << 30
    with pytest.raises(ConfigError, match="IGM_MEMORY_LIMIT='lots' is not a byte count"):
        parse_bytes("lots")
    monkeypatch.setenv("IGM_MEMORY_LIMIT", "1M")
    assert memory_budget() == 1 << 20
    check_allocation(1 << 20, "a test")
    with pytest.raises(DataError, match=r"a test needs 2\.0 MiB but the limit is 1\.0 MiB \(IGM_MEMORY_LIMIT=1M\): shrink it"):
        check_allocation(2 << 20, "a test", "shrink it")
    monkeypatch.delenv("IGM_MEMORY_LIMIT")
    assert memory_budget() > 1 << 20  # the machine's available memory


def npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()  # magic string and header


def test_a_header_claiming_a_terabyte_is_refused_before_loading(tmp_path: Path) -> None:
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", npy_header((10**6, 10**6)) + b"\0" * 64)
    with pytest.raises(DataError, match=r"reading .*bomb.npz \(x \(1000000, 1000000\)\) needs 10\.9 TiB but the limit is .* \(available memory\)"):
        open_data(f"npz:{path}")


def test_a_deflated_archive_of_zeros_is_refused_by_its_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "zeros.npz"
    n = 4 << 20  # 32 MiB of float64 zeros, deflated to a few tens of kB
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z, z.open("x.npy", "w", force_zip64=True) as f:
        f.write(npy_header((n // 4, 4)))
        for _ in range(8):
            f.write(bytes(4 << 20))
    assert path.stat().st_size < 1 << 20
    monkeypatch.setenv("IGM_MEMORY_LIMIT", "16M")
    with pytest.raises(DataError, match="needs 48.0 MiB but the limit is 16.0 MiB .*raise IGM_MEMORY_LIMIT"):
        open_data(f"npz:{path}")


def test_non_array_members_are_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "extra.npz"
    np.savez(path, x=np.arange(8.0).reshape(4, 2))
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("notes.txt", b"\0" * (8 << 20))
    monkeypatch.setenv("IGM_MEMORY_LIMIT", "1M")
    assert open_data(f"npz:{path}").split("train")[0].shape == (4, 2)


# --- paths ---------------------------------------------------------------------------------------


def test_the_resolved_path_finds_the_data_from_another_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "elsewhere").mkdir()
    np.savez(tmp_path / "data" / "d.npz", x=np.arange(8.0).reshape(4, 2))
    monkeypatch.chdir(tmp_path)
    info = open_data("npz:data/d.npz").info
    assert info.name == "npz:data/d.npz" and info.resolved == f"npz:{tmp_path / 'data' / 'd.npz'}"
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(DataError, match="does not exist"):
        open_data(info.name)
    assert reopen_data(DataInfo.from_json(info.to_json())).split("train")[0].shape == (4, 2)
    (tmp_path / "data" / "d.npz").unlink()
    with pytest.raises(DataError, match=r"cannot open the data this checkpoint was trained on, 'npz:data/d.npz' .*name it with --data SOURCE"):
        reopen_data(info)


def test_builtin_sources_have_no_resolved_path() -> None:
    assert open_data("grid25").info.resolved is None


# --- what the command line says and does with the user's labels -----------------------------------


def _cli(capsys, *args) -> tuple[int, str, str]:
    from igm.cli import main

    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def test_fit_eval_and_sample_speak_the_users_labels(tmp_path: Path, capsys, monkeypatch) -> None:
    """A gappy-labelled npz: fit and eval say what they read; --label 7 draws class 7, not index 7."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    y = np.repeat(GAPPY, 8)
    x = (rng.normal(size=(y.size, 2)) * 0.05 + y[:, None]).astype(np.float32)  # class c sits at (c, c)
    spec = save(tmp_path / "pts.npz", x=x, y=y)
    code, _, err = _cli(capsys, "fit", "cgan", "--data", spec, "--steps", "3", "--batch-size", "16", "--out", "run", "-q")
    assert code == 0, err
    assert "read npz:" in err and "64 train examples" in err and "8 classes: 0, 1, 3, 4, 5, 7, 8, 9" in err
    from igm import load

    model = load(tmp_path / "run" / "model.safetensors")
    assert model.data.labels() == [0, 1, 3, 4, 5, 7, 8, 9] and model.generator.num_classes == 8
    sampled = {}
    import igm.runs

    real = igm.runs.sample_in_chunks
    monkeypatch.setattr(igm.runs, "sample_in_chunks", lambda gen, n, labels, g: sampled.setdefault("labels", labels) is None or real(gen, n, labels, g))
    code, _, err = _cli(capsys, "sample", "run/model.safetensors", "-n", "4", "--label", "7", "--out", "s.npy")
    assert code == 0, err
    assert sampled["labels"].tolist() == [5, 5, 5, 5]  # label 7 is class 5 of 0,1,3,4,5,7,8,9
    code, _, err = _cli(capsys, "sample", "run/model.safetensors", "-n", "4", "--label", "2", "--out", "t.npy")
    assert code == 2 and "label '2' is not a class" in err and "7" in err
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(capsys, "eval", "run/model.safetensors", "-n", "200")
    assert err.splitlines()[0].startswith("read npz:")  # said before anything else (here: no metric applies)
    code, _, err = _cli(capsys, "fit", "gan", "--data", "grid25", "--steps", "2", "--batch-size", "16", "--out", "g", "-q")
    assert code == 0 and "read grid25: 100000 train" in err.replace(",", ""), err
    code, out, err = _cli(capsys, "eval", "g/model.safetensors", "-n", "200", "--json")
    assert code == 0, err
    assert err.splitlines()[0].startswith("read grid25") and "running metrics: modes" in err
    assert "modes" in json.loads(out)
