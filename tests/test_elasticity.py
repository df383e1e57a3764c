"""The Hooke's-law fit across pre-training volumes, on rows whose answer is known."""

from __future__ import annotations

import math

import pytest

from resistkit.elasticity import hooke_scaling


def rows(exponent: float, noise: tuple[float, ...] = (1.0, 1.0, 1.0)) -> list[dict]:
    out = []
    for q1, align in ((100, 2_000), (400, 8_000)):
        for d_pre, wobble in zip((1e6, 2e6, 4e6), noise, strict=True):
            predicted = d_pre / align
            out.append({"model": f"{d_pre:g}", "seed": 42, "q1": q1, "pretrain_tokens": d_pre,
                        "align_tokens": align, "k_predicted": predicted,
                        "k_hat": 0.01 * predicted**exponent * wobble})
    return out


def test_exact_power_law_recovers_its_exponent() -> None:
    for exponent in (1.0, 0.5, -0.3):
        fit = hooke_scaling(rows(exponent))
        assert [r["q1"] for r in fit] == [100, 400]
        for r in fit:
            assert r["exponent"] == pytest.approx(exponent)
            assert r["exponent_ci95_half"] == pytest.approx(0.0, abs=1e-9)
            assert r["volumes"] == 3 and r["predicted_exponent"] == 1.0
    # At exponent 1 the level is off by exactly the factor put in.
    assert hooke_scaling(rows(1.0))[0]["ratio_to_predicted"] == pytest.approx(0.01)


def test_noise_widens_the_interval_and_unusable_rows_drop_out() -> None:
    noisy = rows(1.0, (1.3, 0.8, 1.1))
    noisy.append({**noisy[0], "k_hat": math.inf})  # a flat pre-training slope
    noisy.append({**noisy[0], "pretrain_tokens": None})  # a base with no recorded volume
    fit = hooke_scaling(noisy)
    assert all(r["points"] == 3 and r["exponent_ci95_half"] > 0 for r in fit)
    assert all(abs(r["exponent"] - 1.0) < r["exponent_ci95_half"] * 3 for r in fit)


def test_one_volume_is_not_a_fit() -> None:
    same = [dict(r, pretrain_tokens=1e6) for r in rows(1.0)]
    assert hooke_scaling(same) == []
