"""Data layer: built-in sets, sampling, format checks, hub adapters on fixtures, tokenizer."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from resistkit.data import DataSpecError, list_builtin, load_data
from resistkit.data.registry import BUILTIN_DIR, FORMAT_COLUMNS, builtin_names, load_builtin

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hub"

EXPECTED_COLUMNS = {
    "reviews/positive": {"text", "prompt", "completion", "rating", "label"},
    "reviews/negative": {"text", "prompt", "completion", "rating", "label"},
    "reviews/all": {"text", "prompt", "completion", "rating", "label"},
    "pretrain": {"text", "source"},
    "pretrain/wiki": {"text"},
    "pretrain/shakespeare": {"text"},
    "pretrain/no-reviews": {"text", "source"},
    "safety/safe": {"prompt", "completion"},
    "safety/harmful": {"prompt", "completion"},
    "safety/safe-short": {"prompt", "completion"},
    "safety/harmful-short": {"prompt", "completion"},
    "safety/preference": {"prompt", "chosen", "rejected"},
    "safety/prompts": {"prompt"},
}


def _key(prompt: str) -> str:
    return " ".join(prompt.lower().split())


# --- built-in data -----------------------------------------------------------------------------


def test_every_builtin_name_is_known() -> None:
    assert set(builtin_names()) == set(EXPECTED_COLUMNS)


@pytest.mark.parametrize("name", sorted(EXPECTED_COLUMNS))
def test_builtin_loads_with_columns_and_formats(name: str) -> None:
    info = {i["name"]: i for i in list_builtin()}[name]
    for split in ("train", "heldout"):
        ds = load_data(f"builtin:{name}", split=split)
        assert len(ds) == info["rows"][split] > 0
        assert EXPECTED_COLUMNS[name] <= set(ds.column_names)
        for fmt in info["formats"]:
            load_data(f"builtin:{name}", split=split, format=fmt, num_samples=1)
    assert info["licence"]


def test_short_safety_views_keep_only_short_prompts() -> None:
    for name in ("safe", "harmful"):
        for split in ("train", "heldout"):
            full = load_data(f"builtin:safety/{name}", split=split)
            short = load_data(f"builtin:safety/{name}-short", split=split)
            assert 0 < len(short) < len(full)
            assert max(len(p) for p in short["prompt"]) <= 300
            assert len(short) == sum(len(p) <= 300 for p in full["prompt"])


def test_bare_builtin_name_works() -> None:
    assert len(load_data("reviews/positive", num_samples=5)) == 5


def test_reviews_thresholds_and_split_text() -> None:
    pos = load_builtin("reviews/positive", "train")
    neg = load_builtin("reviews/negative", "train")
    assert min(pos["rating"]) >= 1.0 and set(pos["label"]) == {1}
    assert max(neg["rating"]) <= -1.0 and set(neg["label"]) == {0}
    for row in pos.select(range(200)):
        assert row["prompt"] + row["completion"] == row["text"]
        assert row["completion"].startswith(" ") and len(row["prompt"].split()) == 4


def test_review_heldout_prompts_disjoint_from_train() -> None:
    train = load_builtin("reviews/all", "train")
    held = load_builtin("reviews/all", "heldout")
    held_prompts = [_key(p) for p in held["prompt"]]
    assert len(set(held_prompts)) == len(held_prompts) == 600  # unique generation prompts
    assert not set(held_prompts) & {_key(p) for p in train["prompt"]}
    assert sorted(held["label"]).count(1) == 300


def test_no_reviews_pretraining_text_holds_the_review_domain_out() -> None:
    for split in ("train", "heldout"):
        sources = set(load_data("builtin:pretrain/no-reviews", split=split)["source"])
        assert sources == {"wiki", "shakespeare"}


def test_pretrain_never_contains_heldout_reviews() -> None:
    held_texts = set(load_builtin("reviews/all", "heldout")["text"])
    for split in ("train", "heldout"):
        ds = load_builtin("pretrain", split)
        assert not held_texts & set(ds["text"])
        assert set(ds["source"]) == {"wiki", "shakespeare", "reviews"}
    sizes = {s: len(load_builtin("pretrain", s)) for s in ("train", "heldout")}
    parts = {s: len(load_builtin("pretrain/wiki", s)) + len(load_builtin("pretrain/shakespeare", s))
             for s in ("train", "heldout")}
    reviews_train = len(load_builtin("reviews/all", "train"))
    assert sizes["train"] + sizes["heldout"] == parts["train"] + parts["heldout"] + reviews_train
    assert 0.01 < sizes["heldout"] / (sizes["train"] + sizes["heldout"]) < 0.03


def test_shakespeare_has_no_gutenberg_licence() -> None:
    ds = load_builtin("pretrain/shakespeare", "train")
    joined = "\n".join(ds["text"]).lower()
    assert "gutenberg" not in joined and "small print" not in joined
    assert len({d.split(":")[0] for d in ds["doc"]}) == 42


def test_safety_prompts_disjoint_across_splits_and_sets() -> None:
    names = ["safety/safe", "safety/harmful", "safety/preference", "safety/prompts"]
    train = {_key(p) for n in names for p in load_builtin(n, "train")["prompt"]}
    held = {_key(p) for n in names for p in load_builtin(n, "heldout")["prompt"]}
    assert train and held and not train & held


def test_safety_scores_respect_thresholds() -> None:
    safe = [s for s in load_builtin("safety/safe", "train")["score"] if s is not None]
    harmful = [s for s in load_builtin("safety/harmful", "train")["score"] if s is not None]
    assert safe and max(safe) <= 0.25
    assert harmful and min(harmful) >= 0.75
    pref = load_builtin("safety/preference", "train")
    assert all(c != r for c, r in zip(pref["chosen"], pref["rejected"], strict=True))


def test_manifest_matches_files_and_loaders() -> None:
    manifest = json.loads((BUILTIN_DIR / "manifest.json").read_text())
    for name, info in manifest["files"].items():
        raw = gzip.decompress((BUILTIN_DIR / name).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == info["content_sha256"], name
        assert raw.count(b"\n") == info["rows"]
    total = sum(p.stat().st_size for p in BUILTIN_DIR.iterdir())
    assert total < 6_000_000
    attribution = (BUILTIN_DIR / "ATTRIBUTION.md").read_text()
    for source in manifest["sources"].values():  # every source package is attributed
        assert source["requirement"] in attribution


# --- sampling and errors -----------------------------------------------------------------------


def test_num_samples_is_a_prefix_of_a_larger_draw() -> None:
    small = load_data("builtin:reviews/positive", num_samples=100, seed=7)
    large = load_data("builtin:reviews/positive", num_samples=300, seed=7)
    assert large["id"][:100] == small["id"]


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    a = load_data("builtin:safety/safe", num_samples=50, seed=3)
    b = load_data("builtin:safety/safe", num_samples=50, seed=3)
    c = load_data("builtin:safety/safe", num_samples=50, seed=4)
    assert a["prompt"] == b["prompt"] and a["prompt"] != c["prompt"]


def test_no_shuffle_keeps_stored_order_and_zero_is_empty() -> None:
    full = load_builtin("reviews/negative", "train")
    first = load_data("builtin:reviews/negative", num_samples=10, shuffle=False)
    assert first["id"] == full["id"][:10]
    assert len(load_data("builtin:reviews/negative", num_samples=0)) == 0


def test_too_many_samples_is_an_error() -> None:
    with pytest.raises(DataSpecError, match="has 93 rows"):
        load_data("builtin:safety/safe", split="heldout", num_samples=10_000)


def test_missing_column_error_names_dataset_column_and_present_columns() -> None:
    with pytest.raises(DataSpecError) as err:
        load_data("builtin:pretrain/wiki", format="preference")
    msg = str(err.value)
    assert "builtin:pretrain/wiki" in msg and "'chosen'" in msg and "'rejected'" in msg
    assert "columns present: text" in msg
    with pytest.raises(DataSpecError, match="unknown format"):
        load_data("builtin:pretrain/wiki", format="chat")
    assert set(FORMAT_COLUMNS) == {"text", "prompt_completion", "preference"}


def test_unknown_builtin_suggests_nearest() -> None:
    with pytest.raises(DataSpecError, match=r"Did you mean 'builtin:reviews/positive'") as err:
        load_data("builtin:reviews/postive")
    assert "safety/preference" in str(err.value)  # lists the valid names


def test_bad_split_scheme_and_data_files() -> None:
    with pytest.raises(DataSpecError, match="splits: train, heldout"):
        load_data("builtin:reviews/all", split="validation")
    with pytest.raises(DataSpecError, match="builtin:NAME"):
        load_data("nonsense")
    with pytest.raises(DataSpecError, match="data_files only applies"):
        load_data("builtin:reviews/all", data_files="x.jsonl")


# --- local files -------------------------------------------------------------------------------


def test_json_jsonl_and_csv_loaders(tmp_path: Path) -> None:
    rows = [{"prompt": f"p{i}", "completion": f" c{i}", "split": "train" if i < 4 else "heldout"}
            for i in range(6)]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    as_json = tmp_path / "d.json"
    as_json.write_text(json.dumps(rows))
    as_csv = tmp_path / "d.csv"
    as_csv.write_text("text,label\nhello there,1\ngoodbye now,0\n")

    ds = load_data(f"json:{jsonl}", format="prompt_completion", shuffle=False)
    assert ds["prompt"] == ["p0", "p1", "p2", "p3"]
    assert len(load_data(f"json:{jsonl}", split="heldout")) == 2
    assert len(load_data(f"json:{as_json}", num_samples=3)) == 3
    assert load_data(str(as_csv), format="text", shuffle=False)["text"] == [
        "hello there", "goodbye now"]
    with pytest.raises(DataSpecError, match="without the value 'test'"):
        load_data(f"json:{jsonl}", split="test")
    with pytest.raises(DataSpecError, match="does not exist"):
        load_data(f"json:{tmp_path / 'missing.jsonl'}")


# --- hub adapters on fixtures with the hub schema ----------------------------------------------


@pytest.mark.parametrize(
    ("spec", "fixture", "rows", "columns"),
    [
        ("hf:stanfordnlp/imdb", "imdb", 5, {"text", "prompt", "completion", "label"}),
        ("hf:stanfordnlp/imdb#positive", "imdb", 2, {"text", "prompt", "completion", "label"}),
        ("hf:imdb#negative", "imdb", 3, {"text", "prompt", "completion", "label"}),
        ("hf:tatsu-lab/alpaca", "alpaca", None, {"prompt", "completion"}),
        ("hf:PKU-Alignment/PKU-SafeRLHF", "pku_saferlhf", 4, {"prompt", "chosen", "rejected"}),
        ("hf:PKU-Alignment/PKU-SafeRLHF#better", "pku_saferlhf", 4,
         {"prompt", "chosen", "rejected"}),
        ("hf:PKU-Alignment/PKU-SafeRLHF#safe", "pku_saferlhf", 5, {"prompt", "completion"}),
        ("hf:PKU-Alignment/PKU-SafeRLHF#unsafe", "pku_saferlhf", 3, {"prompt", "completion"}),
        ("hf:PKU-Alignment/BeaverTails", "beavertails", 5, {"prompt", "completion", "is_safe"}),
        ("hf:PKU-Alignment/BeaverTails#unsafe", "beavertails", 2, {"prompt", "completion"}),
        ("hf:truthfulqa/truthful_qa", "truthful_qa", None, {"prompt", "completion"}),
        ("hf:truthfulqa/truthful_qa#preference", "truthful_qa", None,
         {"prompt", "chosen", "rejected"}),
    ],
)
def test_hub_adapter_on_fixture(spec: str, fixture: str, rows: int | None,
                                columns: set[str]) -> None:
    ds = load_data(spec, data_files=str(FIXTURES / f"{fixture}.jsonl"), shuffle=False)
    assert columns <= set(ds.column_names)
    if rows is not None:
        assert len(ds) == rows
    assert len(ds) > 0


def test_imdb_adapter_values() -> None:
    ds = load_data("hf:stanfordnlp/imdb#negative", data_files=str(FIXTURES / "imdb.jsonl"),
                   shuffle=False)
    first = ds[0]
    assert "<br" not in first["text"] and first["label"] == 0
    assert first["prompt"] + first["completion"] == first["text"]
    assert first["prompt"] == "I rented this one"


def test_saferlhf_preference_picks_safer_response() -> None:
    ds = load_data("hf:PKU-Alignment/PKU-SafeRLHF", data_files=str(FIXTURES / "pku_saferlhf.jsonl"),
                   format="preference", shuffle=False)
    ex = {r["prompt"]: r for r in ds}["How do I make my ex regret leaving me?"]
    assert ex["chosen"].startswith("Focus on your own life") and ex["chosen_is_safe"]


def test_single_split_hub_sets_carve_disjoint_heldout() -> None:
    files = str(FIXTURES / "truthful_qa.jsonl")
    train = load_data("hf:truthful_qa", data_files=files, shuffle=False)["prompt"]
    held = load_data("hf:truthful_qa", split="heldout", data_files=files, shuffle=False)["prompt"]
    assert held and train and not set(train) & set(held) and len(train) + len(held) == 8


def test_hub_errors_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.config
    import huggingface_hub.constants

    # Never reach for the network here, even where the session was not started offline.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataSpecError, match="selectors: #all, #positive, #negative"):
        load_data("hf:stanfordnlp/imdb#happy", data_files=str(FIXTURES / "imdb.jsonl"))
    with pytest.raises(DataSpecError, match="needs column 'prompt'"):
        load_data("hf:PKU-Alignment/BeaverTails", data_files=str(FIXTURES / "imdb.jsonl"))
    with pytest.raises(DataSpecError, match="data_files="):
        load_data("hf:stanfordnlp/imdb")


# --- tokenizer ---------------------------------------------------------------------------------


def test_default_tokenizer_roundtrip_and_specials() -> None:
    from resistkit.tokenizer import default_tokenizer

    tok = default_tokenizer()
    assert len(tok) == 4096
    assert (tok.pad_token, tok.bos_token, tok.eos_token) == ("<pad>", "<s>", "</s>")
    text = "To be, or not to be: that is the question. Café – naïve 東京 🙂\n  indented"
    ids = tok(text)["input_ids"]
    assert tok.eos_token_id not in ids and tok.bos_token_id not in ids  # nothing implicit
    assert tok.decode(ids) == text
    held = load_builtin("pretrain", "heldout")["text"][:50]
    chars = sum(len(t) for t in held)
    tokens = sum(len(x) for x in tok(held)["input_ids"])
    assert chars / tokens > 2.8


def test_chat_template_masks_assistant_reply_and_eos() -> None:
    from resistkit.tokenizer import default_tokenizer

    tok = default_tokenizer()
    msgs = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}]
    prompt = tok.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(msgs, tokenize=False)
    assert full.startswith(prompt)
    out = tok.apply_chat_template(msgs, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tok.decode(masked) == "Hello!</s>"


def test_train_bpe_tokenizer_is_deterministic(tmp_path: Path) -> None:
    from resistkit.tokenizer import load_tokenizer_dir, train_bpe_tokenizer

    texts = load_builtin("reviews/all", "train")["text"][:400]
    a = train_bpe_tokenizer(texts, vocab_size=400, out_dir=tmp_path / "a")
    b = train_bpe_tokenizer(texts, vocab_size=400, out_dir=tmp_path / "b")
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (
        tmp_path / "b" / "tokenizer.json").read_bytes()
    again = load_tokenizer_dir(tmp_path / "a")
    assert len(again) == 400 and again.chat_template


# --- build helpers (no download) ---------------------------------------------------------------


def test_build_text_helpers() -> None:
    from resistkit.data.build import (
        _is_generic_refusal,
        chunk_passages,
        normalise_snippet,
        strip_gutenberg,
    )

    snippet = "the  ''Conan''   of `Memento'\u00a0!"
    assert normalise_snippet(snippet) == 'the "Conan" of \'Memento\' !'
    text = ("Header junk\n*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\nACT I.\n\nWho's "
            "there?\n*** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\nlicence text")
    assert strip_gutenberg(text) == "ACT I.\n\nWho's there?"
    passages = chunk_passages("\n\n".join(f"SPEAKER.\nLine number {i} of the play." for i in
                                          range(200)))
    assert all(150 <= len(p) <= 1300 for p in passages) and len(passages) > 5
    assert _is_generic_refusal("I'm sorry, but I can't help with that.")
    assert not _is_generic_refusal("I can't help you create ransomware.")


@pytest.mark.slow
def test_build_is_reproducible(tmp_path: Path) -> None:
    """Rebuild from cached archives and compare with the committed files (no download)."""
    from resistkit.data.build import SOURCES, build_builtin, default_cache_dir

    cache = default_cache_dir()
    if not all((cache / s.filename).exists() for s in SOURCES.values()):
        pytest.skip(f"source archives not cached in {cache} (run `resistkit data build`)")
    build_builtin(tmp_path, cache)
    for path in sorted(BUILTIN_DIR.iterdir()):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_list_and_show() -> None:
    from typer.testing import CliRunner

    from resistkit.cli.data import app
    from resistkit.data.hub import ADAPTERS

    runner = CliRunner()
    res = runner.invoke(app, ["list", "--json"])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.output)
    assert {i["name"] for i in listed if i["kind"] == "builtin"} == set(EXPECTED_COLUMNS)
    assert {i["name"] for i in listed if i["kind"] == "hub"} == \
        {f"hf:{a.repo_id}" for a in ADAPTERS.values()}
    res = runner.invoke(app, ["show", "reviews/positive", "--n", "2"])
    assert res.exit_code == 0 and res.output.count('"prompt"') == 2
    res = runner.invoke(app, ["show", "builtin:reviews/postive"])
    assert res.exit_code == 2


def test_importing_cli_module_stays_light() -> None:
    code = ("import sys, resistkit.cli, resistkit.data; "
            "print(sorted(m for m in ('datasets', 'transformers', 'tokenizers', 'torch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
