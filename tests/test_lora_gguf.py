"""A PEFT LoRA adapter as a GGUF adapter for llama.cpp: what the file holds (tiny Qwen2, fast),
the safetensors reader's dtypes, the lookup of a run's adapter and GGUF base, and (slow) the
packaged SmolLM2 with a random LoRA giving in llama.cpp the tokens transformers gives."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from lmm.errors import LmmError
from lmm.lm import lora_gguf

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
gguf = pytest.importorskip("gguf")

from lmm.lm.models import tiny_model  # noqa: E402
from lmm.train.model import add_lora  # noqa: E402

QWEN2 = {"arch": "qwen2", "blocks": 2, "heads": 4, "kv_heads": 2}


def _adapter(tmp_path: Path, base: str = "qwen-base.gguf") -> tuple[Path, dict[str, np.ndarray]]:
    torch.manual_seed(0)
    peft_model = add_lora(tiny_model().model, r=4, alpha=8, dropout=0.0, targets="q_proj,down_proj")
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p)
    out = tmp_path / "adapter"
    peft_model.save_pretrained(out)
    config = json.loads((out / "adapter_config.json").read_text())
    (out / "adapter_config.json").write_text(
        json.dumps({**config, "base_model_name_or_path": base})
    )
    state = {k: v.detach().numpy() for k, v in peft_model.named_parameters() if "lora_" in k}
    return out, state


def test_convert_writes_an_adapter_llama_cpp_reads(tmp_path: Path) -> None:
    adapter, state = _adapter(tmp_path)
    out = lora_gguf.convert(adapter, tmp_path / "a.gguf", QWEN2)
    reader = gguf.GGUFReader(str(out))
    field = reader.fields["general.type"]
    assert bytes(field.parts[field.data[0]]).decode() == "adapter"
    alpha = reader.fields["adapter.lora.alpha"]
    assert float(alpha.parts[alpha.data[0]][0]) == 8.0
    tensors = {t.name: np.asarray(t.data) for t in reader.tensors}
    assert sorted(tensors) == sorted(
        f"blk.{i}.{m}.weight.lora_{ab}"
        for i in (0, 1)
        for m in ("attn_q", "ffn_down")
        for ab in "ab"
    )
    a = state["base_model.model.model.layers.1.mlp.down_proj.lora_A.default.weight"]
    b = state["base_model.model.model.layers.1.mlp.down_proj.lora_B.default.weight"]
    np.testing.assert_array_equal(tensors["blk.1.ffn_down.weight.lora_a"], a)  # [r, in]
    np.testing.assert_array_equal(tensors["blk.1.ffn_down.weight.lora_b"], b)  # [out, r]
    assert not (out.parent / "a.gguf.partial").exists()


def test_llama_q_rows_are_permuted_as_the_base_is(tmp_path: Path) -> None:
    adapter, state = _adapter(tmp_path)
    out = lora_gguf.convert(adapter, tmp_path / "a.gguf", {**QWEN2, "arch": "llama"})
    tensors = {t.name: np.asarray(t.data) for t in gguf.GGUFReader(str(out)).tensors}
    b = state["base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight"]
    got = tensors["blk.0.attn_q.weight.lora_b"]
    assert not np.array_equal(got, b)
    head = b.shape[0] // 4  # 4 heads; within each, rows (0, half, 1, half+1, ...)
    order = [h * head + i // 2 + (i % 2) * (head // 2) for h in range(4) for i in range(head)]
    np.testing.assert_array_equal(got, b[order])


def test_read_safetensors_takes_bf16_and_f16(tmp_path: Path) -> None:
    values = np.array([1.5, -2.0, 0.25], dtype=np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    f16 = values.astype(np.float16).tobytes()
    header = {
        "x": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]},
        "y": {"dtype": "F16", "shape": [1, 3], "data_offsets": [6, 12]},
    }
    head = json.dumps(header).encode()
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", len(head)) + head + bf16 + f16)
    got = lora_gguf.read_safetensors(path)
    np.testing.assert_array_equal(got["x"], values)
    np.testing.assert_array_equal(got["y"], values[None])
    header["x"]["dtype"] = "I8"
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + bf16 + f16)
    with pytest.raises(LmmError, match="I8"):
        lora_gguf.read_safetensors(path)


def test_for_llama_cpp_finds_the_run_adapter_and_needs_a_gguf_base(tmp_path: Path) -> None:
    adapter, _ = _adapter(tmp_path, base="Qwen/Qwen2.5-0.5B")  # a hub id: not for llama.cpp
    assert lora_gguf.adapter_dir(tmp_path / "adapter" / "best") is None
    run = tmp_path / "run"
    run.mkdir()
    adapter.rename(run / "best")
    assert lora_gguf.adapter_dir(run) == run / "best"
    assert lora_gguf.for_llama_cpp(run) is None
    assert lora_gguf.for_llama_cpp(tmp_path / "nothing") is None


@pytest.mark.slow
def test_smollm2_lora_in_llama_cpp_gives_the_tokens_transformers_gives(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from llama_cpp import Llama

    from lmm.lm.trained import load_base

    torch.manual_seed(0)
    lm, tok = load_base("smollm2", torch.float32, "cpu")
    peft_model = add_lora(
        lm, r=8, alpha=16, dropout=0.0, targets="q_proj,k_proj,v_proj,o_proj,gate_proj"
    )
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)
    peft_model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({**config, "base_model_name_or_path": "smollm2"})
    )
    prompt = "The capital of France is"
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = peft_model.generate(ids, max_new_tokens=8, do_sample=False, top_p=None, top_k=None,
                                  temperature=None, pad_token_id=tok.eos_token_id)  # fmt: skip
    expected = tok.decode(out[0, ids.shape[1] :])
    found = lora_gguf.for_llama_cpp(tmp_path)
    assert found is not None
    base, adapter = found
    texts = []
    for lora in (None, adapter):
        llm = Llama(model_path=str(base), lora_path=str(lora) if lora else None, n_ctx=256,
                    n_threads=1, verbose=False)  # fmt: skip
        texts.append(llm.create_completion(prompt, max_tokens=8, temperature=0.0, top_k=1))
    base_text, lora_text = (t["choices"][0]["text"] for t in texts)
    assert lora_text == expected != base_text
    from lmm.lm import llamacpp, models

    if not os.environ.get("LMM_RUNTIME"):  # the run folder through the generator seam
        lm = models.generator(str(tmp_path), device="cpu")
        assert isinstance(lm, llamacpp.LlamaCppLM) and lm.lora == adapter
