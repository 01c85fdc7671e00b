"""The trainer on CPU with a tiny Qwen2 built from a config and a BPE tokenizer trained here:
chunked loss = plain loss, answer-only labels, packing, config precedence, 3 steps of each stage
(files, log lines, LoRA changes and the base does not), full fine-tuning, resume, loading a run
for inference, and DDP / FSDP on two gloo processes."""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

import orjson
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")
pytest.importorskip("peft")

from lmm import paths  # noqa: E402
from lmm.cli import main  # noqa: E402
from lmm.errors import LmmError  # noqa: E402
from lmm.ingest.run import ingest  # noqa: E402
from lmm.lm import loaded, models  # noqa: E402
from lmm.lm.trained import is_trained_dir, load_trained  # noqa: E402
from lmm.store import history  # noqa: E402
from lmm.store.db import Store  # noqa: E402
from lmm.train import data, loop, pairs, parallel  # noqa: E402
from lmm.train.base import DataConfig  # noqa: E402
from lmm.train.config import read_toml, resolve  # noqa: E402
from lmm.train.loss import CausalLMLoss, chunked_cross_entropy  # noqa: E402

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _tokenizer(texts: list[str]) -> Any:
    """A byte-level BPE (vocab 400) trained on `texts`, with a ChatML template."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
    from tokenizers import models as tok_models

    core = Tokenizer(tok_models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    core.train_from_iterator(texts, trainer)
    tok = tf.PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>",
                                     pad_token="<|endoftext|>",
                                     additional_special_tokens=SPECIALS[1:])  # fmt: skip
    tok.chat_template = models.CHATML
    return tok


def _model(tok: Any, seed: int = 0) -> Any:
    config = tf.Qwen2Config(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        tie_word_embeddings=False, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    return tf.Qwen2ForCausalLM(config)


def _sft_rows(n: int, offset: int = 0) -> list[dict[str, Any]]:
    facts = ["use uv, not pip", "run pytest -q", "SQLite in WAL mode", "httpx over requests",
             "make test before commit", "APScheduler, not cron"]  # fmt: skip
    return [
        {"messages": [
            {"role": "system", "content": "Recall the memories that matter."},
            {"role": "user", "content": f"Task {i}: set up the {facts[i % 6].split()[-1]} step."},
            {"role": "assistant", "content": f"- [preference] {facts[i % 6]}"},
        ]}
        for i in range(offset, offset + n)
    ]  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A saved tiny base model and a data folder (CPT from the sample history, SFT hand-made)."""
    root = tmp_path_factory.mktemp("train")
    store = Store(root / "lmm.db")
    ingest(store, [paths.sample_projects()])
    cfg = DataConfig()
    docs = [
        pairs.render_session(s["id"], "Project: tidepool", store.session_turns(s["id"]), cfg)
        for s in history.sessions(store)
    ]
    store.close()
    tok = _tokenizer(docs)
    base = root / "base"
    _model(tok).save_pretrained(base)
    tok.save_pretrained(base)
    out = root / "data"
    out.mkdir()
    rows = {
        "cpt_train": [{"text": d} for d in docs[:-1]],
        "cpt_val": [{"text": docs[-1]}],
        "sft_train": _sft_rows(12),
        "sft_val": _sft_rows(3, offset=12),
        "synthesis_train": _sft_rows(4, offset=20),
        "synthesis_val": [],
    }
    for stem, items in rows.items():
        (out / f"{stem}.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in items))
    return {"root": root, "base": base, "data": out}


def _cfg(world: dict[str, Path], stage: str, out: Path, **kw: Any) -> Any:
    flags = {"base": str(world["base"]), "data": str(world["data"]), "out": str(out),
             "max_steps": 3, "seq_len": 128, "grad_accum": 2,
             "eval_every": 2, "eval_batches": 2, "lora_r": 4, "lora_alpha": 8,
             "tensorboard": False, **kw}  # fmt: skip
    return resolve(stage, None, flags)


# ---- loss


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("select", [True, False])
def test_chunked_loss_and_gradients_equal_the_plain_loss(
    world: dict[str, Path], select: bool, fused: bool
) -> None:
    tok = tf.AutoTokenizer.from_pretrained(world["base"])
    model = _model(tok, seed=1)
    ids = torch.randint(3, len(tok), (2, 40), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[0, :15] = -100  # a prompt without loss
    labels[1, 30:] = -100  # padding
    plain = model(input_ids=ids, labels=labels).loss
    plain.backward()
    want = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    wrapped = CausalLMLoss(model, chunk=7, select=select, fused=fused)  # 7 does not divide 55
    chunked = wrapped(ids, None, labels) / labels[:, 1:].ne(-100).sum()
    chunked.backward()
    assert torch.allclose(chunked, plain, atol=1e-6)
    for n, p in model.named_parameters():
        assert torch.allclose(p.grad, want[n], atol=1e-6), n
    with torch.no_grad():  # evaluation: the same value, no gradient work
        assert torch.allclose(wrapped(ids, None, labels) / labels[:, 1:].ne(-100).sum(), plain)


@pytest.mark.parametrize("fused", [True, False])
def test_chunked_loss_never_makes_logits_for_every_token(fused: bool) -> None:
    """Every tensor made in forward and backward is at most one chunk of logits (16 x 5000), far
    below the full 64 x 5000 a plain loss makes."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Largest(TorchDispatchMode):
        numel = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, tuple | list) else [out]:
                if isinstance(t, torch.Tensor):
                    Largest.numel = max(Largest.numel, t.numel())
            return out

    hidden = torch.randn(1, 65, 8, requires_grad=True)
    weight = torch.randn(5000, 8, requires_grad=True)
    labels = torch.randint(0, 5000, (1, 65))
    with Largest():
        loss = chunked_cross_entropy(hidden, weight, labels, chunk=16, select=False, fused=fused)
        loss.backward()
    assert 16 * 5000 <= Largest.numel <= 16 * 5000
    assert hidden.grad is not None and weight.grad is not None


# ---- data


def test_sft_labels_cover_only_the_answer(world: dict[str, Path]) -> None:
    tok = tf.AutoTokenizer.from_pretrained(world["base"])
    msgs = _sft_rows(1)[0]["messages"]
    ids, labels = data.encode_chat(tok, msgs)
    answer = [i for i, y in zip(ids, labels, strict=True) if y != -100]
    assert tok.decode(answer) == "- [preference] use uv, not pip<|im_end|>\n"
    n_prompt = labels.index(next(y for y in labels if y != -100))
    assert all(y == -100 for y in labels[:n_prompt])
    prompt = loaded.render_prompt(tok, msgs[:2])  # exactly what inference feeds the model
    assert ids[:n_prompt] == tok(prompt, add_special_tokens=False)["input_ids"]


def test_packing_joins_documents_with_eos_and_drops_the_tail(world: dict[str, Path]) -> None:
    tok = tf.AutoTokenizer.from_pretrained(world["base"])
    docs = ["alpha beta gamma", "delta epsilon", "zeta"]
    stream = []
    for d in docs:
        stream += [*tok(d, add_special_tokens=False)["input_ids"], tok.eos_token_id]
    blocks = data.pack(docs, tok, 5)
    assert [ids for ids, _ in blocks] == [stream[i : i + 5] for i in range(0, len(stream) - 4, 5)]
    assert all(ids == labels for ids, labels in blocks)


def test_a_global_step_sees_the_same_rows_on_one_or_two_ranks() -> None:
    items = [([i, i], [i, i]) for i in range(20)]

    def rows(world: int, rank: int, batch: int) -> list[int]:
        it = data.batches(items, batch, rank=rank, world=world, seed=5, epoch=1, pad_id=0)
        return [int(x) for b in it for x in b.input_ids[:, 0]]

    one = rows(1, 0, 2)  # 1 device, micro-batch 2, 2 micro-batches per step
    two = [rows(2, 0, 2), rows(2, 1, 2)]  # 2 devices, micro-batch 2, 1 per step
    for step in range(len(one) // 4):
        assert sorted(one[4 * step : 4 * step + 4]) == sorted(
            two[0][2 * step : 2 * step + 2] + two[1][2 * step : 2 * step + 2]
        )


# ---- config


def test_config_defaults_then_toml_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('lr = 1e-3\nseq_len = 512\n[sft]\nseq_len = 1024\nmethod = "full"\n')
    file = read_toml(path)
    cpt, sft = resolve("cpt", file), resolve("sft", file, {"seq_len": 64, "lr": None})
    assert (cpt.lr, cpt.seq_len, cpt.method, cpt.batch_size) == (1e-3, 512, "lora", 1)
    assert (sft.lr, sft.seq_len, sft.method) == (1e-3, 64, "full")
    assert resolve("sft", {}, {}).peak_lr == 2e-4
    assert resolve("sft", {}, {"method": "full"}).peak_lr == 1e-5
    path.write_text("learning_rate = 1\n")
    with pytest.raises(LmmError, match=r"unknown key.*learning_rate"):
        read_toml(path)
    with pytest.raises(LmmError, match="seq_len must be a int"):
        resolve("sft", {"seq_len": "long"})
    with pytest.raises(LmmError, match="--fsdp is for --method full"):
        resolve("sft", {}, {"fsdp": True})


def test_example_configs_resolve() -> None:
    configs = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))
    assert configs
    for path in configs:
        text = path.read_text()
        assert text.startswith("# ") and ("lmm train" in text.split("\n\n")[0])
        for stage in ("cpt", "sft"):
            resolve(stage, read_toml(path))


# ---- training runs


def _params(module: Any) -> dict[str, Any]:
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def test_lora_steps_change_adapters_and_never_the_base(
    world: dict[str, Path], tmp_path: Path
) -> None:
    cfg = _cfg(world, "sft", tmp_path / "r", grad_checkpointing=True)
    d = parallel.init("cpu")
    p = loop.prepare(cfg, d)
    before = _params(p.model)
    items = data.examples(cfg, p.tokenizer, "train")
    opt = loop.make_optimizer(p.module, cfg, d.device)
    sched = loop.make_schedule(opt, cfg, 3)
    it = data.batches(items, 2, rank=0, world=1, seed=0, epoch=0, pad_id=p.tokenizer.pad_token_id)
    for _ in range(3):
        loop.train_step(p, [next(it), next(it)], opt, sched, cfg, d.device)
    after = _params(p.model)
    lora = [n for n in before if "lora_" in n]
    trainable = {n: q.requires_grad for n, q in p.model.named_parameters()}
    assert lora and trainable == {n: "lora_" in n for n in before}
    assert all(not torch.equal(before[n], after[n]) for n in lora if "lora_B" in n)
    assert all(torch.equal(before[n], after[n]) for n in before if "lora_" not in n)


@pytest.mark.parametrize("fused", [True, False])
def test_a_step_with_non_finite_gradients_changes_no_weight(
    world: dict[str, Path], tmp_path: Path, fused: bool
) -> None:
    cfg = _cfg(world, "sft", tmp_path / "r")
    d = parallel.init("cpu")
    p = loop.prepare(cfg, d)
    items = data.examples(cfg, p.tokenizer, "train")
    trainable = [q for q in p.module.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-2, fused=fused)
    sched = loop.make_schedule(opt, cfg, 3)
    it = data.batches(items, 2, rank=0, world=1, seed=0, epoch=0, pad_id=p.tokenizer.pad_token_id)
    forward = p.module.forward
    p.module.forward = lambda *a: forward(*a) * float("nan")
    before = _params(p.model)
    loop.train_step(p, [next(it)], opt, sched, cfg, d.device)
    assert all(torch.equal(before[n], q) for n, q in p.model.named_parameters())
    p.module.forward = forward
    loop.train_step(p, [next(it)], opt, sched, cfg, d.device)  # a finite step still learns
    changed = [n for n, q in p.model.named_parameters() if not torch.equal(before[n], q)]
    assert changed and all("lora_" in n for n in changed)


def test_cli_trains_both_stages_three_steps_each(
    world: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("LMM_HOME", str(tmp_path))
    run = tmp_path / "run"
    argv = ["train", "--stage", "both", "--base", str(world["base"]), "--data", str(world["data"]),
            "--out", str(run), "--max-steps", "3", "--grad-accum", "2", "--eval-every", "2",
            "--seq-len", "128", "--eval-batches", "2", "--lora-r", "4", "--merge",
            "--json"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    logged = [line for line in captured.err.splitlines() if " | loss " in line]
    assert [s.split(" | ")[0] for s in logged] == ["step 1/3", "step 2/3", "step 3/3"] * 2
    assert all(" | lr " in s and " | tok/s " in s and " | dt " in s for s in logged)
    for stage in ("cpt", "sft"):
        out = run / stage
        assert {p.name for p in out.iterdir()} >= {
            "adapter", "best", "checkpoint", "config.json", "metrics.jsonl", "tokenizer"
        }  # fmt: skip
        meta = json.loads((out / "config.json").read_text())
        assert meta["lmm_run"] == 1 and meta["stage"] == stage and len(meta["data_hash"]) == 64
        assert meta["config"]["max_steps"] == 3 and meta["result"]["steps"] == 3
        records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
        assert [r["step"] for r in records if "val_loss" in r] == [2, 3]
        assert (out / "adapter" / "adapter_config.json").is_file()
    sft_meta = json.loads((run / "sft" / "config.json").read_text())
    assert sft_meta["config"]["init_from"] == str(run / "cpt")
    assert (run / "sft" / "merged" / "config.json").is_file()
    result = json.loads(captured.out)
    assert [r["steps"] for r in result] == [3, 3]
    # the run plugs into inference: models.load takes the run folder
    assert is_trained_dir(run / "sft") and not is_trained_dir(run / "sft" / "merged")
    lm = models.load(str(run / "sft"), device="cpu")
    assert lm.name == str(run / "sft") and isinstance(
        lm.generate([{"role": "user", "content": "hi"}], 4), str
    )
    models.unload(str(run / "sft"))


def test_full_finetuning_saves_a_whole_model(world: dict[str, Path], tmp_path: Path) -> None:
    result = loop.train(_cfg(world, "sft", tmp_path / "full", method="full", max_steps=2))
    assert result.weights == tmp_path / "full" / "model"
    assert (result.weights / "config.json").is_file() and result.best is not None
    trained = load_trained(result.run, device="cpu")
    base = tf.AutoModelForCausalLM.from_pretrained(world["base"])
    w = dict(trained.model.named_parameters())
    changed = [n for n, p in base.named_parameters() if not torch.equal(p, w[n])]
    assert len(changed) == len(list(base.parameters()))


class _Stop(Exception):
    pass


def test_resume_continues_exactly(world: dict[str, Path], tmp_path: Path) -> None:
    kw = {"max_steps": 3, "save_every": 1, "eval_every": 0}
    straight = loop.train(_cfg(world, "sft", tmp_path / "a", **kw))

    def crash(step: int, total: int) -> None:
        if step == 2:  # after step 1's checkpoint, before step 2's
            raise _Stop

    with pytest.raises(_Stop):
        loop.train(_cfg(world, "sft", tmp_path / "b", **kw), crash)
    state = torch.load(tmp_path / "b" / "checkpoint" / "trainer.pt", weights_only=False)
    assert state["step"] == 1
    resumed = loop.train(_cfg(world, "sft", "", resume=str(tmp_path / "b"), **kw))
    assert resumed.run == tmp_path / "b" and resumed.loss == pytest.approx(straight.loss, abs=1e-6)
    from safetensors.torch import load_file

    a = load_file(straight.weights / "adapter_model.safetensors")
    b = load_file(resumed.weights / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_missing_data_says_what_to_run(world: dict[str, Path], tmp_path: Path) -> None:
    cfg = resolve("sft", None, {"base": str(world["base"]), "data": str(tmp_path)})
    with pytest.raises(LmmError, match="lmm build-data"):
        loop.train(cfg)


# ---- several processes (gloo on CPU)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world_size: int, port: int, cfgs: list[Any], out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))  # fmt: skip
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    results = [loop.train(c) for c in cfgs]
    if rank == 0:
        Path(out).write_text(json.dumps([r.loss for r in results]))
    parallel.close(parallel.Dist(rank, world_size))


@pytest.mark.slow
def test_ddp_and_fsdp_on_two_gloo_processes(world: dict[str, Path], tmp_path: Path) -> None:
    """2 processes x micro-batch 1 = 1 process x 2 micro-batches: the same losses, step by step."""
    import torch.multiprocessing as mp

    common = {"max_steps": 2, "grad_accum": 1, "eval_every": 0, "grad_checkpointing": False}
    cfgs = [
        _cfg(world, "cpt", tmp_path / "ddp", **common),
        _cfg(world, "cpt", tmp_path / "fsdp", method="full", fsdp=True, **common),
        # resume the FSDP run from its sharded checkpoint for one more step
        _cfg(world, "cpt", "", method="full", fsdp=True, resume=str(tmp_path / "fsdp"),
             **{**common, "max_steps": 3}),
    ]  # fmt: skip
    out = tmp_path / "losses.json"
    mp.spawn(_worker, args=(2, _free_port(), cfgs, str(out)), nprocs=2, join=True)
    two = json.loads(out.read_text())
    one = [
        loop.train(_cfg(world, "cpt", tmp_path / "one-lora", **{**common, "grad_accum": 2})).loss,
        loop.train(_cfg(world, "cpt", tmp_path / "one-full", method="full",
                        **{**common, "grad_accum": 2})).loss,
    ]  # fmt: skip
    assert two[:2] == pytest.approx(one, abs=1e-4)
    assert two[2] is not None
    for run, weights in [("ddp", "adapter"), ("fsdp", "model")]:
        assert (tmp_path / run / weights).is_dir() and (tmp_path / run / "checkpoint").is_dir()
        meta = json.loads((tmp_path / run / "config.json").read_text())
        assert meta["world_size"] == 2
    assert (tmp_path / "fsdp" / "checkpoint" / "dcp").is_dir()
    state = torch.load(tmp_path / "fsdp" / "checkpoint" / "trainer.pt", weights_only=False)
    assert state["step"] == 3
    trained = load_trained(tmp_path / "fsdp", device="cpu")
    assert trained.model.config.num_hidden_layers == 2
