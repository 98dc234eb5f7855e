"""``scoresde nll | sample | compare --model FORMAT:PATH`` give the Python path's numbers.

The Python path is the public API with the conventions typed out here: the dequantization cells
(diffusers/k-diffusion: centred on k / 127.5 - 1; score_sde: [k / 256, (k + 1) / 256) on
[-1, 1]), the sampler grid of ``plan_for_nfe`` and the item seeds of ``sharded_*``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from scoresde.cli import main
from scoresde.data import load_image_folder
from scoresde.distributed import sharded_bits_per_dim, sharded_sample
from scoresde.parameterization.pretrained import load_pretrained
from scoresde.samplers import plan_for_nfe

from .pretrained_helpers import (
    SHAPE,
    score_sde_config,
    tiny_unet,
    write_kdiffusion,
    write_score_sde,
)

ENDPOINTS = (-1 - 1 / 255, 1 + 1 / 255)  # cells centred on the training values k / 127.5 - 1


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A folder of 20 grayscale 4x4 PNGs (256 levels); its test split holds images 0 and 10."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("pngs")
    g = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(g.integers(0, 256, (4, 4), dtype=np.uint8), mode="L").save(
            folder / f"{i:02d}.png"
        )
    return folder


def _diffusers(folder):
    diffusers = pytest.importorskip(
        "diffusers", reason="diffusers is not installed (pip install 'scoresde[diffusers]')"
    )
    from .pretrained_helpers import randomize

    unet = diffusers.UNet2DModel(sample_size=4, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                 layers_per_block=1, norm_num_groups=4,
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"))  # fmt: skip
    randomize(unet, seed=1, scale=0.05).save_pretrained(folder)
    diffusers.DDPMScheduler(
        num_train_timesteps=100, prediction_type="v_prediction"
    ).save_pretrained(folder)
    return f"diffusers:{folder}", ENDPOINTS, {"time_variable": "log_snr"}


def _kdiffusion(folder):
    write_kdiffusion(
        folder, tiny_unet(seed=3, time_scale=1.0, scale=0.1), sigma_min=0.01, sigma_max=20.0
    )
    return f"kdiffusion:{folder}", ENDPOINTS, {}


def _score_sde(folder):
    net = tiny_unet(seed=5, time_scale=1 / 999, scale=0.1)  # smooth in the label 999 t
    write_score_sde(folder, net, score_sde_config("vpsde", net))
    return f"scoresde:{folder}", (-1.0, 1.0), {}


FORMATS = {"diffusers": _diffusers, "kdiffusion": _kdiffusion, "scoresde": _score_sde}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_nll_and_sample_match_the_python_path(tmp_path, images, fmt, capsys):
    spec, cells, options = FORMATS[fmt](tmp_path / "model")
    out = tmp_path / "nll"
    argv = ["nll", "--model", spec, "--data", str(images), "-n", "2", "--rtol", "1e-4",
            "--device", "cpu", "--quiet", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    got = json.loads((out / "results.json").read_text())
    if fmt == "scoresde":  # an untrained eps-network fails the prediction-type check: one line
        err = capsys.readouterr().err
        assert "scoresde nll: warning: the network's output denoises the data as" in err

    loaded = load_pretrained(spec)
    k = load_image_folder(images).test[:2].round().long()
    res = sharded_bits_per_dim(loaded.model.sde, loaded.model.double(), k, levels=256,
                               model_range=cells, rtol=1e-4, atol=1e-4, seed=0, **options)  # fmt: skip
    assert res is not None
    assert got["bpd_mean"] == pytest.approx(float(res.bpd.mean()), rel=1e-9)

    out = tmp_path / "sample"
    argv = ["sample", "--model", spec, "-n", "3", "--sampler", "ddim", "--nfe", "6",
            "--device", "cpu", "--quiet", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    samples = np.load(out / "samples.npy")
    loaded = load_pretrained(spec)
    grid, opts = plan_for_nfe(loaded.model.sde, "ddim", 6, exact=False)
    with torch.no_grad():
        x, _ = sharded_sample(
            "ddim", loaded.model.sde, loaded.model, SHAPE, 3, grid, seed=0, **opts
        )
    want = (x + 1) * 127.5  # every format here: model range [-1, 1] <- levels 0..255
    np.testing.assert_allclose(samples, want.numpy(), rtol=1e-5, atol=1e-4)


def test_compare_runs_on_a_model(tmp_path, images):
    spec, _, _ = _score_sde(tmp_path / "model")
    out = tmp_path / "cmp"
    argv = ["compare", "--model", spec, "--data", str(images), "--samplers", "ddim", "--nfe", "4",
            "--seeds", "1", "-n", "2", "--metrics", "sw2", "--device", "cpu", "--quiet",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert (out / "results.json").is_file()


def test_model_errors_are_one_line(tmp_path, images, capsys):
    assert main(["nll", "--model", f"kdiffusion:{tmp_path}/none", "--data", str(images)]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["nll", "--model", "onnx:x", "--data", str(images)]) == 2
    assert "expected FORMAT:PATH" in capsys.readouterr().err
    spec, _, _ = _score_sde(tmp_path / "m")
    assert main(["compare", "--model", spec, "--device", "cpu", "--out", str(tmp_path / "c")]) == 2
    assert "pass --data" in capsys.readouterr().err
