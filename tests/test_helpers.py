"""The shared helpers' one homes: mean ± standard error, JSON-safe values, SDE agreement."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from scoresde import VESDE, VPSDE, GaussianMixture, ScoreModel
from scoresde._utils import check_same_sde, sde_of
from scoresde.studies import json_safe, mean_se, write_json


def test_mean_se_is_the_sample_std_over_sqrt_n_along_dim() -> None:
    x = torch.tensor([[1.0, 10.0], [2.0, 10.0], [3.0, 10.0], [6.0, 10.0]], dtype=torch.float64)
    mean, se = mean_se(x)
    assert mean.tolist() == [3.0, 10.0]
    # sample variance (ddof = 1) of 1, 2, 3, 6 is 14 / 3; se = sqrt(14 / 3) / sqrt(4)
    assert se[0].item() == pytest.approx(math.sqrt(14 / 3) / 2) and se[1].item() == 0.0
    mean, se = mean_se(x[:1])  # one draw: the error is unknown, not zero
    assert mean.tolist() == [1.0, 10.0] and torch.isnan(se).all()
    assert mean_se(x.T, dim=1)[0].tolist() == [3.0, 10.0]


def test_json_safe_writes_strict_json(tmp_path: Path) -> None:
    value = {1: torch.tensor([1.5, math.nan]), "p": Path("a/b"), "t": (math.inf, 2)}
    assert json_safe(value) == {"1": [1.5, None], "p": "a/b", "t": [None, 2]}
    write_json(value, tmp_path / "r.json")
    text = (tmp_path / "r.json").read_text()
    assert text.endswith("\n") and json.loads(text) == json_safe(value)
    assert "NaN" not in text and "Infinity" not in text


def test_sde_of_and_check_same_sde() -> None:
    vp = VPSDE()
    gm = GaussianMixture([1.0], [[0.0]], [[1.0]], sde=vp)
    model = ScoreModel(lambda x, c: x, vp)
    for fn in (gm, gm.score, model, model.score_fn):
        assert sde_of(fn) is vp
    assert sde_of(lambda x, t: x) is None
    check_same_sde(VPSDE(), vp, what="score_fn")  # equal type and config: the same SDE
    check_same_sde(VESDE(), None, what="score_fn")  # carries none: nothing to check
    with pytest.raises(ValueError, match=r"score_fn carries the SDE VPSDE\(.*used with VESDE"):
        check_same_sde(VESDE(), vp, what="score_fn")
    with pytest.raises(ValueError, match="carries the SDE"):
        check_same_sde(VPSDE(beta_max=10.0), vp, what="score_fn")  # same class, other schedule
