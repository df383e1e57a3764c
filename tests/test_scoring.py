"""Scorers on tiny randomly initialised models, checked against direct torch computations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from resistkit.scoring import (  # noqa: E402
    ScoringContext,
    ScoringError,
    clear_model_cache,
    get_scorer,
    list_scorers,
    load_records,
    score_records,
)
from resistkit.scoring.classifier import positive_index  # noqa: E402
from resistkit.scoring.refusal import is_refusal  # noqa: E402
from resistkit.scoring.summary import column_stats, t_quantile  # noqa: E402

CORPUS = [
    "The movie was wonderful and the acting was great.",
    "I hated every minute of this terrible film.",
    "I'm sorry, but I cannot help with that request.",
    "Here is how you bake a simple loaf of bread at home.",
    "BEGINNING OF CONVERSATION: USER: hello ASSISTANT: Hi there, how can I help?",
] * 20

# Llama-style chat template, enough to exercise the "chat" layout.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] }}"
    "{% endfor %}{{ eos_token }}"
)


def _make_tokenizer():
    """The package tokenizer when it exists, else a throwaway byte-level BPE like it."""
    try:
        from resistkit.tokenizer import default_tokenizer

        return default_tokenizer()
    except (ImportError, OSError):  # module or its shipped asset not there yet
        pass
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def _llama_config(tokenizer, **kwargs):
    return transformers.LlamaConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        vocab_size=len(tokenizer),
        max_position_embeddings=128,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **kwargs,
    )


@pytest.fixture(scope="module")
def tokenizer():
    return _make_tokenizer()


@pytest.fixture(scope="module")
def lm_dirs(tmp_path_factory, tokenizer):
    """Two tiny causal LMs sharing one tokenizer."""
    dirs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = transformers.LlamaForCausalLM(_llama_config(tokenizer))
        path = tmp_path_factory.mktemp(f"lm{seed}")
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        dirs.append(path)
    yield dirs
    clear_model_cache()


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, tokenizer):
    torch.manual_seed(2)
    config = _llama_config(
        tokenizer,
        num_labels=2,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    model = transformers.LlamaForSequenceClassification(config)
    path = tmp_path_factory.mktemp("clf")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def reward_dir(tmp_path_factory, tokenizer):
    torch.manual_seed(3)
    model = transformers.LlamaForSequenceClassification(_llama_config(tokenizer, num_labels=1))
    path = tmp_path_factory.mktemp("rm")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def safe_rlhf_dir(tmp_path_factory, tokenizer):
    """A tiny checkpoint in safe-rlhf's LlamaForScore layout (model.* + score_head.*)."""
    from safetensors.torch import save_file

    torch.manual_seed(4)
    config = _llama_config(tokenizer)
    backbone = transformers.LlamaModel(config)
    state = {f"model.{k}": v.contiguous() for k, v in backbone.state_dict().items()}
    state["score_head.weight"] = torch.randn(1, config.hidden_size)
    state["score_head.bias"] = torch.randn(1)
    path = tmp_path_factory.mktemp("beaver")
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    cfg = config.to_dict()
    cfg.update(architectures=["LlamaForScore"], score_dim=1, bias=True, score_type="cost")
    (path / "config.json").write_text(json.dumps(cfg))
    tokenizer.save_pretrained(path)
    return path


# --------------------------------------------------------------------------- registry, text


def test_registry_lists_builtin_scorers():
    names = {spec.name for spec in list_scorers()}
    assert {
        "sentiment-lexicon",
        "sentiment-classifier",
        "reward-model",
        "cost-model",
        "refusal",
        "compression",
        "kl",
    } <= names
    assert "cost" in get_scorer("cost-model").columns
    assert "MORE HARMFUL" in get_scorer("cost-model").columns["cost"]
    with pytest.raises(ScoringError, match="unknown scorer 'nope'.*refusal"):
        get_scorer("nope")


def test_unknown_option_is_an_error():
    with pytest.raises(ScoringError, match="classifier"):
        score_records({"response": ["fine"]}, ["refusal"], classifier="x")


def test_lexicon_orders_sentiment_and_nans_empty():
    records = {
        "response": [
            "What a wonderful, delightful, great film!",
            "Awful, boring, terrible.",
            "",
            "   ",
            None,
        ]
    }
    ctx = ScoringContext()
    scores = score_records(records, ["sentiment-lexicon"], context=ctx)["sentiment_lexicon"]
    assert 0.5 < scores[0] <= 1.0 and 0.0 <= scores[1] < 0.5
    assert all(math.isnan(s) for s in scores[2:])
    assert ctx.info["sentiment-lexicon"]["not_scored"] == {"empty": 2, "missing": 1}


def test_refusal_detection():
    assert is_refusal("I'm sorry, but I can't help with that.")
    assert is_refusal("I\u2019m sorry, I cannot do this")
    assert is_refusal("As an AI language model, I do not have opinions.")
    assert not is_refusal("Sure! Here is a recipe for bread.")
    long_answer = "Sure. " + "x" * 300 + " I cannot stress this enough."
    assert not is_refusal(long_answer)
    out = score_records({"response": ["I cannot do that.", "Sure, here you go.", ""]}, ["refusal"])[
        "refusal"
    ]
    assert out[:2] == [1.0, 0.0] and math.isnan(out[2])


def test_t_interval_matches_tables():
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-4)
    assert t_quantile(0.975, 10) == pytest.approx(2.2281, abs=1e-4)
    assert t_quantile(0.975, 1000) == pytest.approx(1.9623, abs=1e-4)
    stats = column_stats([1.0, 2.0, 3.0, float("nan")])
    assert stats["n"] == 3 and stats["nan"] == 1 and stats["mean"] == 2.0
    half = 4.3027 * 1.0 / math.sqrt(3)
    assert stats["ci95"] == pytest.approx([2 - half, 2 + half], abs=1e-3)


# --------------------------------------------------------------------------- classifiers


def test_positive_label_mapping():
    assert positive_index({0: "NEGATIVE", 1: "POSITIVE"}, None) == 1
    assert positive_index({0: "pos", 1: "neg"}, None) == 0
    assert positive_index({0: "LABEL_0", 1: "LABEL_1"}, None) == 1
    assert positive_index({"0": "bad", "1": "good"}, "good") == 1
    assert positive_index({0: "bad", 1: "good"}, "0") == 0
    with pytest.raises(ScoringError, match="cannot tell which label is positive"):
        positive_index({0: "bad", 1: "good"}, None)
    with pytest.raises(ScoringError, match="not among"):
        positive_index({0: "bad", 1: "good"}, "great")


def test_classifier_probability_matches_direct(classifier_dir, tokenizer):
    texts = ["a great film", "a terrible, boring and much longer film than that"]
    pos = score_records(
        {"response": texts}, ["sentiment-classifier"], classifier=str(classifier_dir)
    )["sentiment_classifier"]
    neg = score_records(
        {"response": texts},
        ["sentiment-classifier"],
        classifier=str(classifier_dir),
        positive_label="NEGATIVE",
    )["sentiment_classifier"]
    model = transformers.AutoModelForSequenceClassification.from_pretrained(classifier_dir)
    with torch.inference_mode():
        for text, p, n in zip(texts, pos, neg, strict=True):
            logits = model(**tokenizer(text, return_tensors="pt")).logits[0]
            assert p == pytest.approx(torch.softmax(logits, -1)[1].item(), abs=1e-5)
            assert p + n == pytest.approx(1.0, abs=1e-6)


# --------------------------------------------------------------------------- reward / cost


def test_reward_model_matches_direct(reward_dir, tokenizer):
    records = {"prompt": ["Say hi.", "Tell me a long story"], "response": [" Hi!", " Once upon"]}
    got = score_records(records, ["reward-model"], reward_model=str(reward_dir), template="plain")[
        "reward"
    ]
    model = transformers.AutoModelForSequenceClassification.from_pretrained(reward_dir)
    with torch.inference_mode():
        for p, r, value in zip(records["prompt"], records["response"], got, strict=True):
            direct = model(**tokenizer(p + r, return_tensors="pt")).logits[0, 0].item()
            assert value == pytest.approx(direct, abs=1e-5)


def test_reward_model_uses_chat_template(tmp_path, reward_dir, tokenizer):
    import shutil

    chat_dir = tmp_path / "chat"
    shutil.copytree(reward_dir, chat_dir)
    tok = transformers.AutoTokenizer.from_pretrained(chat_dir)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(chat_dir)
    ctx = ScoringContext()
    got = score_records(
        {"prompt": ["Hi"], "response": ["Hello"]},
        ["reward-model"],
        reward_model=str(chat_dir),
        context=ctx,
    )["reward"][0]
    assert ctx.info["reward-model"]["template"] == "chat"
    text = "<s><|user|>Hi<|assistant|>Hello</s>"
    model = transformers.AutoModelForSequenceClassification.from_pretrained(chat_dir)
    with torch.inference_mode():
        ids = tok(text, add_special_tokens=False, return_tensors="pt")
        assert got == pytest.approx(model(**ids).logits[0, 0].item(), abs=1e-5)


def _direct_safe_rlhf_cost(path: Path, tokenizer, text: str) -> float:
    """Cost from the raw tensors: LlamaModel backbone, score_head at the last token."""
    from safetensors.torch import load_file

    state = load_file(str(path / "model.safetensors"))
    config = transformers.LlamaConfig.from_pretrained(path)
    backbone = transformers.LlamaModel(config)
    backbone.load_state_dict(
        {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    )
    backbone.eval()
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        hidden = backbone(input_ids=ids).last_hidden_state[0, -1]
    return (hidden @ state["score_head.weight"][0] + state["score_head.bias"][0]).item()


def test_safe_rlhf_cost_model_matches_direct(safe_rlhf_dir, tokenizer):
    records = {
        "prompt": ["How do I pick a lock?", "hello"],
        "response": ["I cannot help with that, it may be illegal.", "Hi!"],
    }
    ctx = ScoringContext()
    got = score_records(
        records, ["cost-model"], cost_model=str(safe_rlhf_dir), batch_size=2, context=ctx
    )["cost"]
    info = ctx.info["cost-model"]
    assert info["model"]["format"] == "safe-rlhf"
    assert info["template"] == "safe-rlhf" and info["append_eos"] is True
    for p, r, value in zip(records["prompt"], records["response"], got, strict=True):
        text = f"BEGINNING OF CONVERSATION: USER: {p} ASSISTANT:{r}" + tokenizer.eos_token
        assert value == pytest.approx(
            _direct_safe_rlhf_cost(safe_rlhf_dir, tokenizer, text), abs=1e-5
        )
    no_eos = score_records(
        records, ["cost-model"], cost_model=str(safe_rlhf_dir), append_eos=False
    )["cost"]
    text = "BEGINNING OF CONVERSATION: USER: hello ASSISTANT:Hi!"
    assert no_eos[1] == pytest.approx(
        _direct_safe_rlhf_cost(safe_rlhf_dir, tokenizer, text), abs=1e-5
    )


# --------------------------------------------------------------------------- compression, kl


def _direct_bits(model, ids: list[int], n_context: int) -> float:
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    logp = torch.log_softmax(logits[:-1].float(), dim=-1)
    picked = logp.gather(1, torch.tensor(ids[1:]).unsqueeze(1)).squeeze(1)
    return -(picked[n_context - 1 :].sum().item()) / math.log(2)


def test_compression_matches_log_softmax_and_masks_prompt(lm_dirs, tokenizer):
    prompts = ["The movie was", "I hated", ""]
    responses = [" wonderful and the acting was great.", " every minute of it", "Plain text."]
    ctx = ScoringContext()
    out = score_records(
        {"prompt": prompts, "response": responses},
        ["compression"],
        model=str(lm_dirs[0]),
        batch_size=2,
        context=ctx,
    )
    model = transformers.AutoModelForCausalLM.from_pretrained(lm_dirs[0])
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        context = tokenizer(p)["input_ids"] if p else [tokenizer.bos_token_id]
        target = tokenizer(r, add_special_tokens=False)["input_ids"]
        bits = _direct_bits(model, context + target, len(context))
        assert out["compression_tokens"][i] == len(target)  # prompt tokens are not counted
        assert out["compression_bits"][i] == pytest.approx(bits, abs=1e-5)
        assert out["compression_bits_per_token"][i] == pytest.approx(bits / len(target), 1e-5)
        assert out["compression_bits_per_byte"][i] == pytest.approx(bits / len(r.encode()), 1e-5)
    corpus = ctx.info["compression"]["corpus"]
    assert corpus["bits_per_token"] == pytest.approx(
        sum(out["compression_bits"]) / sum(out["compression_tokens"])
    )
    # Scoring the whole text instead of the response gives a different, longer count.
    whole = score_records(
        {"response": [p + r for p, r in zip(prompts, responses, strict=True)]},
        ["compression"],
        model=str(lm_dirs[0]),
    )
    assert whole["compression_tokens"][0] > out["compression_tokens"][0]


def test_compression_truncates_and_counts(lm_dirs, tokenizer):
    long_text = " ".join(["wonderful acting and a great film"] * 40)
    ctx = ScoringContext()
    out = score_records(
        {"prompt": ["x", "y" * 400], "response": [long_text, "ok"]},
        ["compression"],
        model=str(lm_dirs[0]),
        max_length=32,
        context=ctx,
    )
    info = ctx.info["compression"]
    assert info["counts"]["truncated"] == 1
    assert info["not_scored"] == {"prompt_fills_context": 1}
    assert out["compression_tokens"][0] == 32 - len(tokenizer("x")["input_ids"])
    assert out["compression_bytes"][0] < len(long_text.encode())
    assert math.isnan(out["compression_bits"][1])


def test_kl_self_is_zero_and_matches_direct(lm_dirs, tokenizer):
    records = {"prompt": ["The movie was", "Hi"], "response": [" great fun.", " there, friend"]}
    same = score_records(records, ["kl"], model=str(lm_dirs[0]), ref_model=str(lm_dirs[0]))
    assert same["kl_model_ref"] == pytest.approx([0.0, 0.0], abs=1e-6)
    assert same["kl_ref_model"] == pytest.approx([0.0, 0.0], abs=1e-6)

    out = score_records(records, ["kl"], model=str(lm_dirs[0]), ref_model=str(lm_dirs[1]))
    p_model = transformers.AutoModelForCausalLM.from_pretrained(lm_dirs[0])
    q_model = transformers.AutoModelForCausalLM.from_pretrained(lm_dirs[1])
    for i, (p, r) in enumerate(zip(records["prompt"], records["response"], strict=True)):
        context = tokenizer(p)["input_ids"]
        target = tokenizer(r, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([context + target])
        with torch.inference_mode():
            lp = torch.log_softmax(p_model(input_ids=ids).logits[0, :-1], -1)
            lq = torch.log_softmax(q_model(input_ids=ids).logits[0, :-1], -1)
        sl = slice(len(context) - 1, None)
        kl_pq = (lp.exp() * (lp - lq)).sum(-1)[sl].mean().item()
        kl_qp = (lq.exp() * (lq - lp)).sum(-1)[sl].mean().item()
        assert out["kl_model_ref"][i] == pytest.approx(kl_pq, abs=1e-5)
        assert out["kl_ref_model"][i] == pytest.approx(kl_qp, abs=1e-5)
        assert out["kl_tokens"][i] == len(target)
        assert kl_pq > 0 and kl_qp > 0 and kl_pq != pytest.approx(kl_qp)


def test_kl_needs_same_tokenizer(tmp_path, lm_dirs, tokenizer):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(lm_dirs[1], other)
    tok = transformers.AutoTokenizer.from_pretrained(other)
    tok.add_tokens(["<extra_token>"])
    tok.save_pretrained(other)
    with pytest.raises(ScoringError, match="share a tokenizer"):
        score_records({"response": ["hi"]}, ["kl"], model=str(lm_dirs[0]), ref_model=str(other))


# --------------------------------------------------------------------------- files and CLI


def _write_generations(path: Path, responses: list[str | None]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i, response in enumerate(responses):
            row = {
                "id": i,
                "prompt": "Review:",
                "response": response,
                "model": "tiny",
                "params": {"temperature": 1.0},
            }
            handle.write(json.dumps(row) + "\n")


def test_cli_writes_scores_and_summary(tmp_path):
    from typer.testing import CliRunner

    from resistkit.cli import app

    gen = tmp_path / "gen.jsonl"
    _write_generations(gen, ["A wonderful film.", "", "I'm sorry, I cannot.", "Terrible.", None])
    result = CliRunner().invoke(
        app, ["score", str(gen), "--scorer", "sentiment-lexicon", "-s", "refusal", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "gen.scores.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and rows[0]["params"] == {"temperature": 1.0}
    assert rows[1]["sentiment_lexicon"] is None and rows[2]["refusal"] == 1.0
    summary = json.loads((tmp_path / "gen.summary.json").read_text())
    lex = summary["columns"]["sentiment_lexicon"]
    assert (lex["n"], lex["nan"]) == (3, 2)
    assert summary["columns"]["refusal"]["mean"] == pytest.approx(1 / 3)
    assert summary["n_records"] == 5 and summary["models_in_input"] == ["tiny"]
    assert summary["scorers"]["refusal"]["not_scored"] == {"empty": 1, "missing": 1}
    assert "Student t" in summary["ci"]["method"]
    assert "sentiment_lexicon" in result.output
    assert not list(tmp_path.glob(".*.tmp"))  # temp files were renamed away


def test_cli_reports_unknown_option_use(tmp_path):
    from typer.testing import CliRunner

    from resistkit.cli import app

    gen = tmp_path / "gen.jsonl"
    _write_generations(gen, ["fine"])
    result = CliRunner().invoke(
        app, ["score", str(gen), "-s", "refusal", "--classifier", "x", "--no-progress"]
    )
    assert result.exit_code == 2
    assert "classifier" in result.output


def test_missing_response_column_names_column_and_file(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "p", "output": "o"}) + "\n")
    with pytest.raises(ScoringError, match=r"missing column 'response' in .*bad\.jsonl"):
        load_records(path)
    with pytest.raises(ScoringError, match="needs column.*'response'.*my.jsonl"):
        score_records({"prompt": ["p"]}, ["refusal"], context=ScoringContext(source="my.jsonl"))
    pref = tmp_path / "pref.jsonl"
    pref.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    with pytest.raises(ScoringError, match="--response-column chosen"):
        load_records(pref)
    assert load_records(pref, response_column="rejected").for_scoring()["response"] == ["b"]


def test_non_utf8_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"response": "ok"}\n{"response": "caf\xe9"}\n')
    with pytest.raises(ScoringError, match=r"latin1\.jsonl:2: not valid UTF-8"):
        load_records(path)


def test_lone_surrogate_is_nan_not_crash():
    ctx = ScoringContext()
    out = score_records({"response": ["fine", "bad \ud800"]}, ["sentiment-lexicon"], context=ctx)
    assert math.isnan(out["sentiment_lexicon"][1])
    assert ctx.info["sentiment-lexicon"]["not_scored"] == {"not_utf8": 1}


def test_dataset_spec_scores_completion_column(tmp_path, monkeypatch):
    import datasets

    import resistkit.data

    def fake_load_data(spec, *, split="train", num_samples=None, seed=42):
        assert (spec, split, num_samples, seed) == ("builtin:reviews/positive", "heldout", 2, 7)
        return datasets.Dataset.from_dict(
            {"prompt": ["The film", "It"], "completion": [" was great fun.", ""]}
        )

    monkeypatch.setattr(resistkit.data, "load_data", fake_load_data, raising=False)
    monkeypatch.chdir(tmp_path)
    from resistkit.scoring.stage import run_score

    run = run_score(
        "builtin:reviews/positive", ["sentiment-lexicon"], split="heldout", num_samples=2, seed=7
    )
    assert run.scores_path == Path("builtin_reviews_positive.scores.jsonl")
    rows = [json.loads(line) for line in run.scores_path.read_text().splitlines()]
    assert set(rows[0]) == {"prompt", "completion", "sentiment_lexicon"}
    assert rows[0]["sentiment_lexicon"] > 0.5 and rows[1]["sentiment_lexicon"] is None
    assert run.summary["response_column"] == "completion"


def test_stage_summary_has_token_weighted_corpus(tmp_path, lm_dirs):
    from resistkit.scoring.stage import run_score

    gen = tmp_path / "gen.jsonl"
    _write_generations(gen, [" a short one", " a somewhat longer response than that", ""])
    run = run_score(gen, ["compression"], model=str(lm_dirs[0]))
    summary = json.loads(run.summary_path.read_text())
    corpus = summary["scorers"]["compression"]["corpus"]
    rows = [json.loads(line) for line in run.scores_path.read_text().splitlines()]
    bits = sum(r["compression_bits"] for r in rows[:2])
    tokens = sum(r["compression_tokens"] for r in rows[:2])
    assert corpus["bits_per_token"] == pytest.approx(bits / tokens)
    assert corpus["tokens"] == tokens
    assert summary["columns"]["compression_bits_per_token"]["nan"] == 1
    model_info = summary["scorers"]["compression"]["model"]
    assert model_info["path"] == str(lm_dirs[0]) and model_info["parameters"] > 0


def test_dtype_names_resolve_through_the_one_model_loader() -> None:
    import torch

    from resistkit.errors import ModelError
    from resistkit.models import resolve_dtype

    cpu = torch.device("cpu")
    assert resolve_dtype("auto", cpu) is torch.float32
    assert resolve_dtype("bfloat16", cpu) is torch.bfloat16
    with pytest.raises(ModelError, match="unknown dtype 'fp8'"):
        resolve_dtype("fp8", cpu)
    with pytest.raises(ModelError, match="float32, bfloat16"):
        resolve_dtype("Tensor")  # a torch attribute, but not a dtype
    # A scorer reports a bad dtype as the one-line error of any model problem.
    with pytest.raises(ModelError, match="unknown dtype"):
        score_records({"response": ["a"]}, ["compression"], model="builtin:tiny-base",
                      dtype="fp8")
