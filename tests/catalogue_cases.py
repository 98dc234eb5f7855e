"""The cases of the bad-input catalogue (:mod:`tests.catalogue`) and the files they read.

Written against the public CLI and API only, so the same cases run on an older checkout (the
"before" column of issue #24's table).
"""

from __future__ import annotations

import copy
import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tests.catalogue import Case

S = ["--device", "cpu", "--quiet"]
T = ["train", "--steps", "2", "--batch-size", "16", *S]
CK = "{fx}/run/checkpoint.pt"
SAMPLE = ["sample", "--ckpt", CK, "-n", "8", "--nfe", "2", *S]
NLL = ["nll", "--ckpt", CK, "-n", "8", *S]
COMPARE_BASE = ["compare", "--analytic", "2modes", "-n", "50", "--nfe", "2", "--seeds", "1", *S]
COMPARE = [*COMPARE_BASE, "--samplers", "ddim"]


class _Evil:
    def __reduce__(self) -> Any:
        return (os.system, ("touch /tmp/scoresde-catalogue-pwned",))


def _tiny_cfg() -> dict[str, Any]:
    return {"net": {"kwargs": {"hidden": 16, "depth": 2}},
            "schedule": {"steps": 2, "batch_size": 16, "log_every": 1, "ckpt_every": 2}}  # fmt: skip


#: Config files (YAML unless the name ends in .json): name -> (text, received fragment).
CONFIGS: dict[str, tuple[str, str]] = {
    "steps_str": ("schedule: {steps: '100'}\n", "'100'"),
    "sched_null": ("schedule: null\n", "null"),
    "dup_yaml": ("optim: {lr: 0.1}\noptim: {lr: 0.2}\n", "'optim'"),
    "dup_inner": ("schedule:\n  steps: 2\n  steps: 3\n", "'steps'"),
    "unknown_key": ("optim: {learning_rate: 0.1}\n", "learning_rate"),
    "unknown_section": ("optimiser: {}\n", "optimiser"),
    "tag": ("optim: !!python/object/apply:os.system ['echo pwned']\n", "python/object"),
    "lr_abc": ("optim: {lr: abc}\n", "'abc'"),
    "lr_nan": ("optim: {lr: .nan}\n", "nan"),
    "lr_inf": ("optim: {lr: .inf}\n", "inf"),
    "lr_zero": ("optim: {lr: 0}\n", "received 0"),
    "batch0": ("schedule: {batch_size: 0}\n", "received 0"),
    "batch_frac": ("schedule: {batch_size: 1.5}\n", "1.5"),
    "steps_neg": ("schedule: {steps: -5}\n", "-5"),
    "steps_bool": ("schedule: {steps: true}\n", "True"),
    "seed_neg": ("schedule: {seed: -1}\n", "-1"),
    "seed_huge": ("schedule: {seed: 1180591620717411303424}\n", "1180591620717411303424"),
    "ema1": ("optim: {ema_decay: 1.0}\n", "1.0"),
    "betas1": ("optim: {betas: [0.9]}\n", "[0.9]"),
    "betas_hi": ("optim: {betas: [0.9, 1.0]}\n", "1.0"),
    "clip_neg": ("optim: {grad_clip: -1}\n", "-1"),
    "warm_neg": ("optim: {warmup_steps: -1}\n", "-1"),
    "decay": ("optim: {lr_decay: linear}\n", "linear"),
    "sde_name": ("sde: {name: vpp}\n", "vpp"),
    "net_name": ("net: {name: transformer}\n", "transformer"),
    "loss_name": ("loss: {name: l2}\n", "l2"),
    "weighting": ("loss: {weighting: nope}\n", "nope"),
    "t_sampling": ("loss: {t_sampling: nope}\n", "nope"),
    "reduction": ("loss: {reduction: nope}\n", "nope"),
    "predicts": ("net: {predicts: nope}\n", "nope"),
    "time_input": ("net: {time_input: nope}\n", "nope"),
    "data_name": ("data: {name: cifar}\n", "cifar"),
    "optim_name": ("optim: {name: sgd}\n", "sgd"),
    "clip_x0": ("net: {x0_clip: -1}\n", "-1"),
    "clip_x0_str": ("net: {x0_clip: abc}\n", "abc"),
    "sigma_data": ("net: {sigma_data: -1}\n", "-1"),
    "log_every0": ("schedule: {log_every: 0}\n", "received 0"),
    "ckpt_every0": ("schedule: {ckpt_every: 0}\n", "received 0"),
    "t_bins0": ("schedule: {t_bins: 0}\n", "received 0"),
    "nan_steps0": ("schedule: {max_nan_steps: 0}\n", "received 0"),
    "eval_neg": ("schedule: {eval_every: -1}\n", "-1"),
    "data_kwargs": ("data: {kwargs: 3}\n", "3"),
    "net_kwargs": ("net: {kwargs: [1, 2]}\n", "[1, 2]"),
    "toplist": ("- 1\n- 2\n", "list"),
    "topscalar": ("3\n", "int"),
    "malformed": ("schedule: {steps: [1,\n", "line"),
    "optim_list": ("optim: []\n", "[]"),
    "sde_kwarg": ("sde: {name: vp, kwargs: {beta_maxx: 3}}\n", "beta_maxx"),
    "net_kwarg": ("net: {kwargs: {hiddenn: 3}}\n", "hiddenn"),
    "sde_kwarg_neg": ("sde: {name: vp, kwargs: {beta_max: -3}}\n", "-3"),
    "ve_sigma": ("sde: {name: ve, kwargs: {sigma_min: 5, sigma_max: 1}}\n", "sigma"),
    "data_missing": ("data: {name: array, kwargs: {path: '{fx}/none.npy'}}\n", "none.npy"),
    "data_str": ("data: {name: array, kwargs: {path: '{fx}/str.npy'}}\n", "str"),
    "data_zero": ("data: {name: array, kwargs: {path: '{fx}/zero.npy'}}\n", "(5, 0)"),
    "data_scalar": ("data: {name: array, kwargs: {path: '{fx}/scalar.npy'}}\n", "()"),
    "data_obj": ("data: {name: array, kwargs: {path: '{fx}/obj.npy'}}\n", "obj.npy"),
    "data_csv": ("data: {name: array, kwargs: {path: '{fx}/csv.npy'}}\n", "csv.npy"),
    "data_nan": ("data: {name: array, kwargs: {path: '{fx}/nan.npy'}}\n", "NaN"),
    "data_huge": ("data: {name: array, kwargs: {path: '{fx}/huge.npy'}}\n", "non-finite"),
    "data_onerow": ("data: {name: array, kwargs: {path: '{fx}/onerow.npy'}}\n", "(1, 2)"),
    "data_complex": ("data: {name: array, kwargs: {path: '{fx}/complex.npy'}}\n", "complex"),
    "data_bool": ("data: {name: array, kwargs: {path: '{fx}/bool.npy'}}\n", "bool"),
    "png_corrupt": ("data: {name: folder, kwargs: {path: '{fx}/pngbad'}}\n", "bad.png"),
    "png_none": ("data: {name: folder, kwargs: {path: '{fx}/pngnone'}}\n", "pngnone"),
    "png_sizes": ("data: {name: folder, kwargs: {path: '{fx}/pngsizes'}}\n", "b.png"),
    "unet_vec": ("data: {name: moons}\nnet: {name: unet}\n", "(2,)"),
    "mlp_img": (
        "data: {name: folder, kwargs: {path: '{fx}/pngok'}}\nnet: {name: mlp}\n",
        "(3, 8, 8)",
    ),
    "data_kwarg": ("data: {name: moons, kwargs: {noise_level: 3}}\n", "noise_level"),
    "dup.json": ('{"schedule": {"steps": 1, "steps": 2}}', "'steps'"),
    "nan.json": ('{"optim": {"lr": NaN}}', "NaN"),
    "str.json": ('{"schedule": {"batch_size": "16"}}', "'16'"),
    "null.json": ('{"optim": {"lr": null}}', "null"),
    "malformed.json": ('{"schedule": ', "malformed"),
    "list.json": ("[1, 2]", "list"),
}

#: Study specs (YAML): name -> (text, received fragment).
SPECS: dict[str, tuple[str, str]] = {
    "grid": ("samplers: [ddim]\nnfe: [2]\nn: 50\nfactors: {grid: [spiral]}\n", "spiral"),
    "t_end_neg": ("samplers: [ddim]\nnfe: [2]\nn: 50\nfactors: {t_end: [-1.0]}\n", "-1.0"),
    "t_end_abc": ("samplers: [ddim]\nnfe: [2]\nn: 50\nfactors: {t_end: [abc]}\n", "abc"),
    "t_end_nan": ("samplers: [ddim]\nnfe: [2]\nn: 50\nfactors: {t_end: [.nan]}\n", "nan"),
    "t_end_3": ("samplers: [ddim]\nnfe: [2]\nn: 50\nfactors: {t_end: [3.0]}\n", "3.0"),
    "eta": ("samplers: [ddim]\nnfe: [2]\nn: 50\nfactors: {eta: [a]}\n", "'a'"),
    "corrector": ("samplers: [pc]\nnfe: [2]\nn: 50\nfactors: {corrector_steps: [-1]}\n", "-1"),
    "option": ("samplers: [ddim]\nnfe: [2]\nn: 50\nfactors: {bogus_option: [1]}\n", "bogus_option"),
    "own_option": ("samplers: [{name: ddim, options: {etaa: 1}}]\nnfe: [2]\nn: 50\n", "etaa"),
    "eta_neg": ("samplers: [{name: ddim, options: {eta: -1}}]\nnfe: [2]\nn: 50\n", "-1"),
    "tag": (
        "samplers: !!python/object/apply:os.system ['echo pwned']\nnfe: [2]\n",
        "python/object",
    ),
    "n_huge": ("samplers: [ddim]\nnfe: [2]\nn: 100000000000000\n", "100000000000000"),
    "dup": ("samplers: [ddim]\nnfe: [2]\nnfe: [3]\nn: 50\n", "'nfe'"),
    "unknown": ("samplers: [ddim]\nnfe: [2]\nbogus: 1\n", "bogus"),
    "sampler": ("samplers: [nope]\nnfe: [2]\nn: 50\n", "nope"),
    "metric": ("samplers: [ddim]\nnfe: [2]\nn: 50\nmetrics: [nope]\n", "nope"),
    "sde": ("samplers: [ddim]\nnfe: [2]\nn: 50\nfactors: {sde: [vv]}\n", "vv"),
    "malformed": ("samplers: [ddim\n", "line"),
    "nfe0": ("samplers: [ddim]\nnfe: [0]\nn: 50\n", "[0]"),
    "seeds_neg": ("samplers: [ddim]\nnfe: [2]\nn: 50\nseeds: [-1]\n", "[-1]"),
    "combine": ("samplers: [ddim]\nnfe: [2]\nn: 50\ncombine: both\n", "both"),
    "zip": (
        "samplers: [ddim]\nnfe: [2]\nn: 50\ncombine: zip\nfactors: {eta: [0.0, 1.0], "
        "t_end: [0.001]}\n",
        "'eta': 2",
    ),
    "empty": ("samplers: []\nnfe: [2]\n", "[]"),
    "factor_scalar": ("samplers: [ddim]\nnfe: [2]\nn: 50\nfactors: {eta: 0.5}\n", "0.5"),
    "n_str": ("samplers: [ddim]\nnfe: [2]\nn: '50'\n", "'50'"),
    "grid_missing": (
        "samplers: [ddim]\nnfe: [2]\nn: 50\nfactors: {grid: [none.json]}\n",
        "none.json",
    ),
    "denoise_str": (
        "samplers: [ddim]\nnfe: [2]\nn: 50\nfactors: {denoise: [yes please]}\n",
        "yes please",
    ),
    "top_list": ("- ddim\n", "list"),
}


def make_fixtures(fx: Path) -> Path:
    """Write every file the cases read into ``fx`` (one tiny trained run among them)."""
    from scoresde.cli.build import train_from_config
    from scoresde.cli.config import RunConfig
    from scoresde.sde import VESDE
    from scoresde.training import save_checkpoint

    fx.mkdir(parents=True)
    RunConfig.from_dict(_tiny_cfg()).save(fx / "cfg.json")
    train_from_config(RunConfig.from_dict(_tiny_cfg()), fx / "run", progress=False, device="cpu")
    ckpt = fx / "run" / "checkpoint.pt"
    raw = ckpt.read_bytes()
    (fx / "trunc.pt").write_bytes(raw[: len(raw) // 2])
    (fx / "empty.pt").write_bytes(b"")
    (fx / "rand.pt").write_bytes(np.random.default_rng(0).bytes(500))
    torch.save(torch.zeros(3), fx / "foreign.pt")
    torch.save({"format": "scoresde-checkpoint-v2", "x": _Evil()}, fx / "evil.pt")
    state = torch.load(ckpt, weights_only=True)
    w = next(v for v in state["ema"].values() if v.numel() > 8)
    flipped = bytearray(raw)
    at = flipped.find(w.contiguous().numpy().tobytes())
    flipped[at + 5] ^= 0x10
    (fx / "flip.pt").write_bytes(bytes(flipped))
    edited = copy.deepcopy(state)
    edited["model_config"]["sde"] = VESDE().config()
    torch.save(edited, fx / "edited.pt")
    plain = {k: v for k, v in state.items() if k not in ("format", "sha256")}
    save_checkpoint(fx / "noema.pt", {k: v for k, v in plain.items() if k != "ema"})
    arch = copy.deepcopy(plain)
    arch["model_config"]["net"]["hidden"] = 32
    save_checkpoint(fx / "arch.pt", arch)
    (fx / "flip_run").mkdir()
    (fx / "flip_run" / "checkpoint.pt").write_bytes(bytes(flipped))
    (fx / "run" / "cfg.json").write_text((fx / "cfg.json").read_text())
    rng = np.random.default_rng(0)
    arrays = {
        "str": np.array([["a", "b"]] * 20), "zero": np.zeros((5, 0)), "scalar": np.float64(3.0),
        "nan": np.full((20, 2), np.nan), "huge": rng.choice([-3e38, 3e38], (100, 2)),
        "onerow": np.zeros((1, 2)), "complex": np.ones((20, 2), dtype=complex),
        "bool": np.ones((20, 2), dtype=bool), "threecol": rng.normal(size=(20, 3)),
        "far": np.concatenate([[[1e30, 0.0]], rng.normal(size=(19, 2))]),
        "ok": rng.normal(size=(20, 2)),
    }  # fmt: skip
    for name, a in arrays.items():
        np.save(fx / f"{name}.npy", a)
    np.save(fx / "obj.npy", np.array([{}, {}], dtype=object), allow_pickle=True)
    (fx / "csv.npy").write_text("1,2\n3,4\n")
    (fx / "pickled.pt").write_bytes(pickle.dumps({"a": 1}))
    (fx / "afile").write_text("x")
    (fx / "thesis").mkdir()
    (fx / "thesis" / "chapter1.tex").write_text("precious")
    (fx / "dirck" / "checkpoint.pt").mkdir(parents=True)
    (fx / "sample_run").mkdir()
    (fx / "sample_run" / "config.json").write_text(json.dumps({"command": "sample"}))
    (fx / "sample_run" / "results.json").write_text("{}")
    (fx / "grid_bad.json").write_text("{not json")
    import matplotlib.image as mpimg

    for folder, files in (("pngbad", {"a.png": 8, "bad.png": None}), ("pngnone", {}),
                          ("pngsizes", {"a.png": 8, "b.png": 6}), ("pngok", {"a.png": 8, "b.png": 8})):  # fmt: skip
        (fx / folder).mkdir()
        for f, size in files.items():
            if size is None:
                (fx / folder / f).write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
            else:
                mpimg.imsave(fx / folder / f, rng.random((size, size)), cmap="gray")
    for name, (text, _) in CONFIGS.items():
        path = fx / "cfg" / (name if name.endswith(".json") else f"{name}.yaml")
        path.parent.mkdir(exist_ok=True)
        path.write_text(text.replace("{fx}", str(fx)))
    for name, (text, _) in SPECS.items():
        (fx / "spec").mkdir(exist_ok=True)
        (fx / "spec" / f"{name}.yaml").write_text(text)
    (fx / "spec.txt").write_text("samplers: [ddim]\n")
    return fx


def _cfg_cases() -> list[Case]:
    out = []
    for name, (_, received) in CONFIGS.items():
        file = name if name.endswith(".json") else f"{name}.yaml"
        out.append(Case(f"train-config-{name}", received,
                        [*T, "--config", f"{{fx}}/cfg/{file}"], tags=("config",)))  # fmt: skip
    return out


def _spec_cases() -> list[Case]:
    return [Case(f"compare-spec-{name}", received,
                 ["compare", "--analytic", "2modes", "--spec", f"{{fx}}/spec/{name}.yaml", *S],
                 tags=("spec",))
            for name, (_, received) in SPECS.items()]  # fmt: skip


def _api(name: str, received: str, call: Any, warn: bool = False) -> Case:
    return Case(f"api-{name}", received, call=call, warn=warn, tags=("api",))


def _api_cases() -> list[Case]:
    from scoresde import VPSDE, GaussianMixture, ScoreModel, sample
    from scoresde.cli.common import float_list, int_list
    from scoresde.cli.config import RunConfig
    from scoresde.data import get_dataset
    from scoresde.data.files import load_array, load_image_folder
    from scoresde.likelihood import elbo, log_likelihood
    from scoresde.nets import ResidualMLP
    from scoresde.samplers import make_grid
    from scoresde.sde import get_sde
    from scoresde.studies import StudySpec
    from scoresde.training import load_checkpoint, load_model

    gm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [[0.3, 0.3], [0.3, 0.3]])
    sde = VPSDE()
    far = torch.tensor([[0.0, 0.0], [1e30, 0.0]], dtype=torch.float64)
    spec = {"samplers": ["ddim"], "nfe": [2], "n": 50}

    def divergence(fx: Path) -> Any:
        from scoresde.likelihood.divergence import score_and_divergence

        return score_and_divergence(
            lambda x, t: x * 2, torch.zeros(2, 3), torch.ones(2), chunk_size=0
        )

    cases = [
        _api("mixture-0dim", "(1, 0)", lambda fx: GaussianMixture([1.0], [[]], [[]])),
        _api("mixture-no-components", "(0,)", lambda fx: GaussianMixture([], [], [])),
        _api("mixture-neg-weight", "-0.5", lambda fx: GaussianMixture([1.5, -0.5], [[0.0], [1.0]], [[1.0], [1.0]])),
        _api("mixture-cov-shape", "(1, 3)", lambda fx: GaussianMixture([1.0], [[0.0, 0.0]], [[1.0, 1.0, 1.0]])),
        _api("mixture-nan", "NaN", lambda fx: GaussianMixture([1.0], [[float("nan"), 0.0]], [[1.0, 1.0]])),
        _api("mixture-not-pd", "-1", lambda fx: GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 0.0], [0.0, -1.0]]])),
        _api("array-str", "str", lambda fx: load_array(fx / "str.npy")),
        _api("array-zero-dim", "(5, 0)", lambda fx: load_array(fx / "zero.npy")),
        _api("array-scalar", "()", lambda fx: load_array(fx / "scalar.npy")),
        _api("array-object", "obj.npy", lambda fx: load_array(fx / "obj.npy")),
        _api("array-csv-renamed", "csv.npy", lambda fx: load_array(fx / "csv.npy")),
        _api("array-complex", "complex", lambda fx: load_array(fx / "complex.npy")),
        _api("array-bool", "bool", lambda fx: load_array(fx / "bool.npy")),
        _api("array-pickle-pt", "pickled.pt", lambda fx: load_array(fx / "pickled.pt")),
        _api("array-evil-pt", "evil.pt", lambda fx: load_array(fx / "evil.pt")),
        _api("array-missing", "none.npy", lambda fx: load_array(fx / "none.npy")),
        _api("png-corrupt", "bad.png", lambda fx: load_image_folder(fx / "pngbad")),
        _api("png-none", "pngnone", lambda fx: load_image_folder(fx / "pngnone")),
        _api("png-sizes", "b.png", lambda fx: load_image_folder(fx / "pngsizes")),
        _api("ckpt-bitflip", "flip.pt", lambda fx: load_checkpoint(fx / "flip.pt")),
        _api("ckpt-edited-sde", "edited.pt", lambda fx: load_model(fx / "edited.pt")),
        _api("ckpt-evil", "evil.pt", lambda fx: load_checkpoint(fx / "evil.pt")),
        _api("ckpt-truncated", "bytes", lambda fx: load_checkpoint(fx / "trunc.pt")),
        _api("ckpt-foreign", "Tensor", lambda fx: load_checkpoint(fx / "foreign.pt")),
        _api("ckpt-arch", "size mismatch", lambda fx: load_model(fx / "arch.pt")),
        _api("ckpt-noema", "ema", lambda fx: load_model(fx / "noema.pt")),
        _api("config-steps-str", "'100'", lambda fx: RunConfig.from_yaml("schedule: {steps: '100'}")),
        _api("config-null-section", "null", lambda fx: RunConfig.from_yaml("schedule: null")),
        _api("config-dup-yaml", "'optim'", lambda fx: RunConfig.from_yaml("optim: {lr: 1}\noptim: {lr: 2}\n")),
        _api("config-dup-json", "'lr'", lambda fx: RunConfig.from_json('{"optim": {"lr": 1, "lr": 2}}')),
        _api("config-tag", "python/name", lambda fx: RunConfig.from_yaml("optim: !!python/name:os.system\n")),
        _api("config-lr-str", "'1e-3'", lambda fx: RunConfig.from_json('{"optim": {"lr": "1e-3"}}')),
        _api("spec-t-end-3", "3.0", lambda fx: StudySpec(**spec, factors={"t_end": [3.0]})),
        _api("spec-eta-str", "'a'", lambda fx: StudySpec(**spec, factors={"eta": ["a"]})),
        _api("spec-n-huge", "100000000000000", lambda fx: StudySpec(**{**spec, "n": 10**14})),
        _api("spec-grid", "spiral", lambda fx: StudySpec(**spec, factors={"grid": ["spiral"]})),
        _api("spec-option", "nope", lambda fx: StudySpec(**spec, factors={"nope": [1]})),
        _api("spec-sampler", "nope", lambda fx: StudySpec(**{**spec, "samplers": ["nope"]})),
        _api("loglik-far", "far outside", lambda fx: log_likelihood(sde, gm.with_sde(sde), far), warn=True),
        _api("elbo-far", "far outside", lambda fx: elbo(sde, gm.with_sde(sde), far), warn=True),
        _api("loglik-rtol-1e-30", "1e-30", lambda fx: log_likelihood(sde, gm.with_sde(sde), far[:2] * 0, rtol=1e-30)),
        _api("divergence-chunk0", "0", divergence),
        _api("sample-nfe0", "0", lambda fx: sample("ddim", sde, gm.with_sde(sde), torch.randn(4, 2, dtype=torch.float64), 0)),
        _api("sample-unknown", "nope", lambda fx: sample("nope", sde, gm.with_sde(sde), torch.randn(4, 2), 5)),
        _api("grid-kind", "spiral", lambda fx: make_grid(sde, 5, "spiral")),
        _api("sde-unknown", "vpp", lambda fx: get_sde("vpp")),
        _api("dataset-unknown", "cifar", lambda fx: get_dataset("cifar")),
        _api("int-list-empty-item", "10,,20", lambda fx: int_list("10,,20")),
        _api("float-list-trailing", "1e-3,", lambda fx: float_list("1e-3,")),
        _api("score-model-t0", "t = 0", lambda fx: ScoreModel(ResidualMLP(2), sde)(torch.randn(3, 2), torch.zeros(3))),
        _api("vpsde-neg-beta", "-1", lambda fx: VPSDE(beta_min=-1.0)),
    ]  # fmt: skip
    return cases


def _cli_cases() -> list[Case]:
    c = Case
    ck = ["--ckpt", CK]
    return [
        # train flags
        c("train-steps0", "received 0", [*T, "--steps", "0"]),
        c("train-steps-neg", "-1", [*T, "--steps", "-1"]),
        c("train-steps-abc", "abc", [*T, "--steps", "abc"]),
        c("train-batch0", "received 0", [*T, "--batch-size", "0"]),
        c("train-batch-1e9", "1000000000", [*T, "--batch-size", "1000000000"]),
        c("train-lr0", "received 0", [*T, "--lr", "0"]),
        c("train-lr-inf", "inf", [*T, "--lr", "inf"]),
        c("train-lr-nan", "nan", [*T, "--lr", "nan"]),
        c("train-seed-neg", "-1", [*T, "--seed", "-1"]),
        c("train-seed-2**70", "1180591620717411303424", [*T, "--seed", str(2**70)]),
        c("train-threads0", "received 0", [*T, "--threads", "0"]),
        c("train-threads-100000", "100000", [*T, "--threads", "100000"]),
        c("train-threads-neg", "-1", [*T, "--threads", "-1"]),
        c("train-device-gpu7", "gpu7", [*T, "--device", "gpu7"]),
        c("train-device-meta", "meta", [*T, "--device", "meta"]),
        c("train-data-bogus", "bogus", [*T, "--data", "bogus"]),
        c("train-sde-bogus", "bogus", [*T, "--sde", "bogus"]),
        c("train-net-bogus", "bogus", [*T, "--net", "bogus"]),
        c("train-out-empty", "empty string", [*T, "--out", ""]),
        # "/" (a regression must not write there: the lr error would stop it, unclear then)
        c("train-out-root", "--out: / holds", [*T, "--lr", "-1", "--out", "/"]),
        c("train-out-file", "afile", [*T, "--out", "{fx}/afile"]),
        c("train-out-foreign", "chapter1.tex", [*T, "--out", "{fx}/thesis"]),
        c("train-out-sample-run", "results.json", [*T, "--out", "{fx}/sample_run"]),
        c("train-out-ckpt-dir", "folder", [*T, "--config", "{fx}/cfg.json", "--out", "{fx}/dirck"]),
        c("train-resume-bitflip", "flip_run", [*T, "--config", "{fx}/cfg.json", "--out", "{fx}/flip_run"]),
        c("train-resume-other-data", "'moons'", [*T, "--config", "{fx}/cfg.json", "--data", "moons", "--out", "{fx}/run"]),
        c("train-resume-other-sde", "'ve'", [*T, "--config", "{fx}/cfg.json", "--sde", "ve", "--out", "{fx}/run"]),
        c("train-config-missing", "none.yaml", [*T, "--config", "{fx}/none.yaml"]),
        c("train-config-suffix", ".txt", [*T, "--config", "{fx}/spec.txt"]),
        c("train-config-dir", "cfg", [*T, "--config", "{fx}/cfg"]),
        # sample
        c("sample-ckpt-missing", "nope.pt", ["sample", "--ckpt", "{fx}/nope.pt", *S]),
        c("sample-ckpt-trunc", "trunc.pt", ["sample", "--ckpt", "{fx}/trunc.pt", *S]),
        c("sample-ckpt-empty", "0 bytes", ["sample", "--ckpt", "{fx}/empty.pt", *S]),
        c("sample-ckpt-random", "500 bytes", ["sample", "--ckpt", "{fx}/rand.pt", *S]),
        c("sample-ckpt-npy", "NUMPY", ["sample", "--ckpt", "{fx}/ok.npy", *S]),
        c("sample-ckpt-foreign", "Tensor", ["sample", "--ckpt", "{fx}/foreign.pt", *S]),
        c("sample-ckpt-bitflip", "flip.pt", ["sample", "--ckpt", "{fx}/flip.pt", *S]),
        c("sample-ckpt-edited-sde", "edited.pt", ["sample", "--ckpt", "{fx}/edited.pt", *S]),
        c("sample-ckpt-evil", "evil.pt", ["sample", "--ckpt", "{fx}/evil.pt", *S]),
        c("sample-ckpt-noema", "ema", ["sample", "--ckpt", "{fx}/noema.pt", *S]),
        c("sample-ckpt-arch", "size mismatch", ["sample", "--ckpt", "{fx}/arch.pt", *S]),
        c("sample-ckpt-dir", "run", ["sample", "--ckpt", "{fx}/run", *S]),
        c("sample-sampler-bogus", "bogus", [*SAMPLE, "--sampler", "bogus"]),
        c("sample-nfe0", "'0'", [*SAMPLE, "--nfe", "0"]),
        c("sample-nfe-neg", "-3", [*SAMPLE, "--nfe", "-3"]),
        c("sample-nfe-abc", "abc", [*SAMPLE, "--nfe", "abc"]),
        c("sample-nfe-1e9", "1000000000", [*SAMPLE, "--nfe", "1000000000"]),
        c("sample-nfe-empty-item", "10,,20", [*SAMPLE, "--nfe", "10,,20"]),
        c("sample-n0", "'0'", [*SAMPLE, "-n", "0"]),
        c("sample-n-neg", "-5", [*SAMPLE, "-n", "-5"]),
        c("sample-n-1e12", "1000000000000", [*SAMPLE, "-n", "1000000000000"]),
        c("sample-grid-bogus", "spiral", [*SAMPLE, "--grid", "spiral"]),
        c("sample-grid-missing", "none.json", [*SAMPLE, "--grid", "{fx}/none.json"]),
        c("sample-grid-malformed", "grid_bad.json", [*SAMPLE, "--grid", "{fx}/grid_bad.json"]),
        c("sample-seed-neg", "-1", [*SAMPLE, "--seed", "-1"]),
        c("sample-seed-2**70", "1180591620717411303424", [*SAMPLE, "--seed", str(2**70)]),
        c("sample-shard0", "'0'", [*SAMPLE, "--shard-size", "0"]),
        c("sample-timeout0", "'0'", [*SAMPLE, "--timeout", "0"]),
        c("sample-timeout-nan", "nan", [*SAMPLE, "--timeout", "nan"]),
        c("sample-out-empty", "empty string", [*SAMPLE, "--out", ""]),
        c("sample-out-file", "afile", [*SAMPLE, "--out", "{fx}/afile"]),
        c("sample-out-train-run", "checkpoint.pt", [*SAMPLE, "--out", "{fx}/run"]),
        c("sample-out-foreign", "chapter1.tex", [*SAMPLE, "--out", "{fx}/thesis"]),
        c("sample-out-root", "--out: / holds", ["sample", "--ckpt", "{fx}/nope.pt", "--out", "/", *S]),
        c("sample-threads-huge", "100000", [*SAMPLE, "--threads", "100000"]),
        c("sample-device-cuda", "cuda", [*SAMPLE, "--device", "cuda:3"]),
        # nll
        c("nll-data-bogus", "bogus", [*NLL, "--data", "bogus"]),
        c("nll-data-missing", "none.npy", [*NLL, "--data", "{fx}/none.npy"]),
        c("nll-data-str", "str", [*NLL, "--data", "{fx}/str.npy"]),
        c("nll-data-obj", "obj.npy", [*NLL, "--data", "{fx}/obj.npy"]),
        c("nll-data-csv", "csv.npy", [*NLL, "--data", "{fx}/csv.npy"]),
        c("nll-data-zero", "(5, 0)", [*NLL, "--data", "{fx}/zero.npy"]),
        c("nll-data-scalar", "()", [*NLL, "--data", "{fx}/scalar.npy"]),
        c("nll-data-3col", "(3,)", [*NLL, "--data", "{fx}/threecol.npy"]),
        c("nll-data-nan", "NaN", [*NLL, "--data", "{fx}/nan.npy"]),
        c("nll-data-complex", "complex", [*NLL, "--data", "{fx}/complex.npy"]),
        c("nll-data-pickled", "pickled.pt", [*NLL, "--data", "{fx}/pickled.pt"]),
        c("nll-data-evil", "evil.pt", [*NLL, "--data", "{fx}/evil.pt"]),
        c("nll-data-far", "far outside", [*NLL, "--data", "{fx}/far.npy", "--rtol", "1e-3"], warn=True),
        c("nll-rtol-1e-30", "1e-30", [*NLL, "--data", "8gaussians", "--rtol", "1e-30"]),
        c("nll-rtol-10", "10", [*NLL, "--data", "8gaussians", "--rtol", "10"]),
        c("nll-rtol0", "'0'", [*NLL, "--data", "8gaussians", "--rtol", "0"]),
        c("nll-rtol-neg", "-1", [*NLL, "--data", "8gaussians", "--rtol", "-1"]),
        c("nll-rtol-abc", "abc", [*NLL, "--data", "8gaussians", "--rtol", "abc"]),
        c("nll-probes0", "'0'", [*NLL, "--data", "8gaussians", "--probes", "0"]),
        c("nll-probes-exact", "--probes 5", [*NLL, "--data", "8gaussians", "--probes", "5"]),
        c("nll-divergence-bogus", "bogus", [*NLL, "--data", "8gaussians", "--divergence", "bogus"]),
        c("nll-split-bogus", "bogus", [*NLL, "--data", "8gaussians", "--split", "bogus"]),
        c("nll-n0", "'0'", [*NLL, "--data", "8gaussians", "-n", "0"]),
        c("nll-ckpt-bitflip", "flip.pt", ["nll", "--ckpt", "{fx}/flip.pt", "--data", "8gaussians", *S]),
        c("nll-ckpt-edited", "edited.pt", ["nll", "--ckpt", "{fx}/edited.pt", "--data", "8gaussians", *S]),
        c("nll-ckpt-trunc", "trunc.pt", ["nll", "--ckpt", "{fx}/trunc.pt", "--data", "8gaussians", *S]),
        c("nll-seed-2**70", "1180591620717411303424", [*NLL, "--data", "8gaussians", "--seed", str(2**70)]),
        c("nll-out-foreign", "chapter1.tex", [*NLL, "--data", "8gaussians", "--out", "{fx}/thesis"]),
        c("nll-out-sample-run", "results.json", [*NLL, "--data", "8gaussians", "--out", "{fx}/sample_run"]),
        # compare
        c("compare-samplers-bogus", "bogus", [*COMPARE_BASE, "--samplers", "bogus"]),
        c("compare-samplers-empty-item", "''", [*COMPARE_BASE, "--samplers", "ddim,,pf_heun"]),
        c("compare-nfe-empty-item", "10,,20", [*COMPARE, "--nfe", "10,,20"]),
        c("compare-nfe0", "'0'", [*COMPARE, "--nfe", "0"]),
        c("compare-nfe-leading-comma", ",10", [*COMPARE, "--nfe", ",10"]),
        c("compare-nfe-trailing-comma", "10,", [*COMPARE, "--nfe", "10,"]),
        c("compare-seeds-neg", "-1", [*COMPARE, "--seeds", "-1"]),
        c("compare-seeds-empty-item", "1,,2", [*COMPARE, "--seeds", "1,,2"]),
        c("compare-metrics-bogus", "bogus", [*COMPARE, "--metrics", "bogus"]),
        c("compare-metrics-empty-item", "''", [*COMPARE, "--metrics", "sw2,,mmd"]),
        c("compare-analytic-bogus", "bogus", ["compare", "--analytic", "bogus", *S]),
        c("compare-analytic-badjson", "{bad", ["compare", "--analytic", "{bad", *S]),
        c("compare-analytic-keys", "weights", ["compare", "--analytic", '{"weights": [1]}', *S]),
        c("compare-analytic-0dim", "(1, 0)", ["compare", "--analytic", '{"weights": [1], "means": [[]], "covariances": [[]]}', *S]),
        c("compare-analytic-negw", "-0.5", ["compare", "--analytic", '{"weights": [1.5, -0.5], "means": [[0], [1]], "covariances": [[1], [1]]}', *S]),
        c("compare-analytic-sum", "0.5", ["compare", "--analytic", '{"weights": [0.5], "means": [[0]], "covariances": [[1]]}', *S]),
        c("compare-analytic-nan", "NaN", ["compare", "--analytic", '{"weights": [1], "means": [[NaN]], "covariances": [[1]]}', *S]),
        c("compare-analytic-huge", "1e+30", ["compare", "--analytic", '{"weights": [1], "means": [[1e30, 0]], "covariances": [[1, 1]]}', *S]),
        c("compare-analytic-notpd", "-1", ["compare", "--analytic", '{"weights": [1], "means": [[0, 0]], "covariances": [[[1, 0], [0, -1]]]}', *S]),
        c("compare-analytic-strings", "'a'", ["compare", "--analytic", '{"weights": ["a"], "means": [[0]], "covariances": [[1]]}', *S]),
        c("compare-ckpt-with-sde", "--sde ve", ["compare", *ck, "--sde", "ve", *S]),
        c("compare-analytic-with-data", "8gaussians", [*COMPARE, "--data", "8gaussians"]),
        c("compare-spec-and-flags", "--samplers", ["compare", "--analytic", "2modes", "--spec", "{fx}/spec/grid.yaml", "--samplers", "ddim", *S]),
        c("compare-spec-missing", "none.yaml", ["compare", "--analytic", "2modes", "--spec", "{fx}/none.yaml", *S]),
        c("compare-spec-suffix", "spec.txt", ["compare", "--analytic", "2modes", "--spec", "{fx}/spec.txt", *S]),
        c("compare-grid-bogus", "spiral", [*COMPARE, "--grid", "spiral"]),
        c("compare-n1", "received 1", [*COMPARE, "-n", "1"]),
        c("compare-n0", "'0'", [*COMPARE, "-n", "0"]),
        c("compare-timeout0", "0", [*COMPARE, "--timeout", "0"]),
        c("compare-ckpt-missing", "nope.pt", ["compare", "--ckpt", "{fx}/nope.pt", *S]),
        c("compare-ckpt-bitflip", "flip.pt", ["compare", "--ckpt", "{fx}/flip.pt", *S]),
        c("compare-ckpt-data-3col", "(3,)", ["compare", *ck, "--data", "{fx}/threecol.npy", *S]),
        c("compare-out-foreign", "chapter1.tex", [*COMPARE, "--out", "{fx}/thesis"]),
        c("compare-no-source", "required", ["compare", *S]),
        # demo and the top level
        c("demo-budget-bogus", "bogus", ["demo", "--budget", "bogus", *S]),
        c("demo-data-mixture", "mixture", ["demo", "--data", "mixture", *S]),
        c("demo-threads0", "received 0", ["demo", "--threads", "0", *S]),
        c("demo-out-file", "afile", ["demo", "--out", "{fx}/afile", *S]),
        c("demo-out-foreign", "chapter1.tex", ["demo", "--out", "{fx}/thesis", *S]),
        c("demo-seed-neg", "-1", ["demo", "--seed", "-1", *S]),
        c("top-no-command", "required", []),
        c("top-bogus-command", "bogus", ["bogus"]),
    ]  # fmt: skip


CASES: list[Case] = [*_cli_cases(), *_cfg_cases(), *_spec_cases(), *_api_cases()]
