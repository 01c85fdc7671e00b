"""lmm.lm.fastgen: the static-cache decode loop gives `model.generate`'s greedy tokens.

CPU tests run the graph-free loop ("eager") on tiny random Qwen3/Qwen2 models built from a config;
the gpu tests check the CUDA-graph loop (eager and compiled forward) the same way."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lmm.errors import LmmError  # noqa: E402
from lmm.lm import fastgen  # noqa: E402
from lmm.lm.fastgen import decode_attention, fast_generate  # noqa: E402

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def tiny_qwen3(seed: int = 0, device: str = "cpu", max_positions: int = 4096) -> Any:
    config = transformers.Qwen3Config(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=max_positions,
        tie_word_embeddings=False,  # tied random weights just repeat the last input token
        eos_token_id=None,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    return transformers.Qwen3ForCausalLM(config).to(device).eval()


def prompt(n: int = 23, seed: int = 1, vocab: int = 512) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, vocab, (n,), generator=g).tolist()


def reference(model: Any, ids: list[int], n: int, eos: int | None = None) -> list[int]:
    x = torch.tensor([ids], device=model.device)
    with torch.inference_mode():
        out = model.generate(
            x,
            attention_mask=torch.ones_like(x),
            max_new_tokens=n,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            eos_token_id=eos,
            pad_token_id=0,
        )
    return [int(t) for t in out[0, len(ids) :].tolist()]


def test_eager_loop_equals_generate_greedy() -> None:
    model = tiny_qwen3()
    ids = prompt()
    expected = reference(model, ids, 40)
    assert len(expected) == 40 and len(set(expected)) > 5  # a real sequence, not one token
    assert fast_generate(model, None, ids, 40, mode="eager") == expected
    assert model.config._attn_implementation == "sdpa"  # decode attention was switched back


def test_eager_loop_is_independent_of_check_every_and_reuses_its_cache() -> None:
    model = tiny_qwen3(seed=3)
    ids = prompt(seed=4)
    expected = reference(model, ids, 30)
    got = [fast_generate(model, None, ids, 30, mode="eager", check_every=k) for k in (1, 7, 64)]
    assert got == [expected, expected, expected]
    assert [d.max_len for d in model.__dict__["_lmm_fastgen"].values()] == [512]
    # a shorter prompt after a longer one reuses the same cache: stale keys must not leak in
    short = prompt(n=5, seed=5)
    assert fast_generate(model, None, short, 12, mode="eager") == reference(model, short, 12)


def test_decode_attention_equals_transformers_sdpa_with_repeated_kv_heads() -> None:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    class Attention(torch.nn.Module):  # what transformers' attention function reads
        is_causal = True
        num_key_value_groups = 4
        training = False

    torch.manual_seed(0)
    query = torch.randn(1, 8, 1, 16)
    key, value = torch.randn(1, 2, 40, 16), torch.randn(1, 2, 40, 16)
    mask = torch.zeros(1, 1, 1, 40)
    mask[..., 27:] = torch.finfo(torch.float32).min  # 27 cached tokens of 40 slots
    got, _ = decode_attention(Attention(), query, key, value, mask, scaling=0.25)
    want, _ = sdpa_attention_forward(Attention(), query, key, value, mask, scaling=0.25)
    assert got.shape == want.shape == (1, 1, 8, 16)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    # and the masked slots really are ignored: garbage there changes nothing
    key[:, :, 27:], value[:, :, 27:] = 1e4, -1e4
    torch.testing.assert_close(decode_attention(Attention(), query, key, value, mask, 0.25)[0], got)
    # under torch.compile it takes the written-out path (what inductor fuses): same values
    compiled = torch.compile(decode_attention, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(Attention(), query, key, value, mask, 0.25)[0], got)


def test_compiled_step_equals_generate_greedy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The "compile" mode's step, traced by dynamo (aot_eager on CPU; no CUDA graph here)."""
    monkeypatch.setattr(fastgen, "COMPILE_BACKEND", "aot_eager")
    model = tiny_qwen3(seed=15)
    ids = prompt(seed=16)
    with torch.inference_mode():
        dec = fastgen.build(model, 512, "compile", sample=False)
        got = fastgen.decode(dec, torch.tensor([ids]), 24, [], check_every=8)
    assert got == reference(model, ids, 24)


def test_stops_after_first_eos_like_generate() -> None:
    model = tiny_qwen3(seed=6)
    ids = prompt(seed=7)
    free = reference(model, ids, 40)
    eos = free[9]  # a token generated mid-way: both must stop right after its first occurrence
    cut = free[: free.index(eos) + 1]
    assert reference(model, ids, 40, eos=eos) == cut
    assert fast_generate(model, None, ids, 40, mode="eager", eos_token_ids=[eos]) == cut


def test_prefill_token_can_be_eos() -> None:
    model = tiny_qwen3(seed=6)
    ids = prompt(seed=7)
    first = reference(model, ids, 1)[0]
    assert fast_generate(model, None, ids, 20, mode="eager", eos_token_ids=[first]) == [first]


def test_qwen2_with_tokenizer_eos_and_auto_fallback() -> None:
    from lmm.lm.loaded import render_prompt
    from lmm.lm.models import tiny_model

    lm = tiny_model(seed=2)
    text = render_prompt(lm.tokenizer, [{"role": "user", "content": "where is the config?"}])
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    eos = lm.tokenizer.eos_token_id
    expected = reference(lm.model, ids, 24, eos=eos)
    assert fast_generate(lm.model, lm.tokenizer, ids, 24, mode="eager") == expected
    assert fast_generate(lm.model, lm.tokenizer, ids, 24) == expected  # auto on CPU: generate


def test_sampling_path() -> None:
    model = tiny_qwen3(seed=8)
    ids = prompt(seed=9)
    # near-zero temperature: Gumbel noise cannot beat the logit gaps, so this is greedy
    assert fast_generate(model, None, ids, 20, 1e-4, mode="eager") == reference(model, ids, 20)
    draws = []
    for _ in range(2):
        torch.manual_seed(123)
        draws.append(fast_generate(model, None, ids, 20, 1.5, mode="eager"))
    assert draws[0] == draws[1]  # seeded: reproducible
    assert draws[0] != reference(model, ids, 20)  # and actually sampled at T=1.5
    assert all(0 <= t < 512 for t in draws[0])


def test_warm_builds_the_decoder_fast_generate_then_uses() -> None:
    model = tiny_qwen3(seed=17)
    fastgen.warm(model)  # auto on CPU is plain generate: nothing to build
    assert "_lmm_fastgen" not in model.__dict__
    fastgen.warm(model, tokens=600, mode="eager")
    (dec,) = model.__dict__["_lmm_fastgen"].values()
    assert (dec.max_len, dec.mode, dec.sample) == (1024, "eager", False)
    ids = prompt(seed=18)
    assert fast_generate(model, None, ids, 16, mode="eager") == reference(model, ids, 16)
    assert list(model.__dict__["_lmm_fastgen"].values()) == [dec]  # reused, not rebuilt


def test_errors_say_what_to_do() -> None:
    model = tiny_qwen3(max_positions=64)
    with pytest.raises(LmmError, match="needs the model on a CUDA GPU"):
        fast_generate(model, None, prompt(), 8, mode="graph")
    with pytest.raises(LmmError, match="exceeds the model's 64 positions"):
        fast_generate(model, None, prompt(n=60), 8, mode="eager")
    with pytest.raises(LmmError, match="unknown fastgen mode 'fast'"):
        fast_generate(model, None, prompt(), 8, mode="fast")


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("mode", ["graph", "compile"])
def test_cuda_graph_loop_equals_generate_greedy(mode: str) -> None:
    model = tiny_qwen3(seed=10, device="cuda")  # float32: no bf16 rounding flips between paths
    ids = prompt(n=37, seed=11)
    expected = reference(model, ids, 64)
    assert len(set(expected)) > 5
    assert fast_generate(model, None, ids, 64, mode=mode) == expected
    eos = expected[20]
    cut = expected[: expected.index(eos) + 1]
    assert fast_generate(model, None, ids, 64, mode=mode, eos_token_ids=[eos]) == cut
    short = prompt(n=9, seed=12)  # same captured graph, shorter prompt
    assert fast_generate(model, None, short, 30, mode=mode, check_every=5) == reference(
        model, short, 30
    )


@pytest.mark.gpu
@cuda
def test_cuda_graph_sampling_and_bf16() -> None:
    model = tiny_qwen3(seed=13, device="cuda")
    ids = prompt(seed=14)
    assert fast_generate(model, None, ids, 32, 1e-4, mode="graph") == reference(model, ids, 32)
    torch.manual_seed(5)
    a = fast_generate(model, None, ids, 32, 1.5, mode="graph")
    torch.manual_seed(5)
    b = fast_generate(model, None, ids, 32, 1.5, mode="graph")
    assert a == b and a != reference(model, ids, 32)
    half = tiny_qwen3(seed=13, device="cuda").to(torch.bfloat16)
    got = fast_generate(half, None, ids, 16, mode="graph")
    assert got[:4] == reference(half, ids, 16)[:4]  # bf16 kernels may round differently later


def test_fuse_mlp_keeps_logits_and_memory() -> None:
    model = tiny_qwen3(seed=17)
    ids = torch.tensor([prompt(seed=18)])
    with torch.inference_mode():
        before = model(ids).logits
    size = sum(p.numel() for p in model.parameters())
    assert fastgen.fuse_mlp(model) == 2 and fastgen.fuse_mlp(model) == 0  # once per MLP
    mlp = model.model.layers[0].mlp
    both = mlp.__dict__["_lmm_gate_up"]
    assert mlp.gate_proj.weight.data_ptr() == both.data_ptr()  # views: no second copy
    assert sum(p.numel() for p in model.parameters()) == size
    with torch.inference_mode():
        torch.testing.assert_close(model(ids).logits, before)


@pytest.mark.gpu
@cuda
def test_models_generate_decodes_with_fastgen_on_cuda() -> None:
    from lmm.lm import loaded

    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=_word_tokenizer(), eos_token="<eos>", pad_token="<pad>"
    )
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    lm = loaded.LoadedModel(tiny_qwen3(seed=19, device="cuda"), tok, "tiny", "cuda")
    text = loaded.generate(lm, "w1 w2 w3", max_new_tokens=12)
    assert lm.model.__dict__.get("_lmm_fastgen")  # the fast decoder served it
    ids = tok("w1 w2 w3 ", return_tensors="pt", add_special_tokens=False)["input_ids"][0].tolist()
    assert text == tok.decode(reference(lm.model, ids, 12, eos=1), skip_special_tokens=True)


def _word_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<pad>": 0, "<eos>": 1, **{f"w{i}": i for i in range(2, 512)}}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    return t
