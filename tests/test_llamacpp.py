"""Which runtime `models.generator` picks for a GGUF model: llama.cpp on a CPU when the `cpu`
extra is installed, transformers on a GPU or when asked; and (slow) a packaged model answering
through llama.cpp."""

from __future__ import annotations

import pytest

from lmm.errors import LmmError
from lmm.lm import llamacpp, models, packaged

needs_llama = pytest.mark.skipif(not llamacpp.available(), reason="pip install 'lmm[cpu]'")


@pytest.fixture(autouse=True)
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMM_GPU", "0")
    monkeypatch.delenv("LMM_RUNTIME", raising=False)
    llamacpp._LOADED.clear()


@needs_llama
def test_a_packaged_gguf_runs_in_llama_cpp_on_a_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    lm = models.llama_cpp_generator("smollm2")
    assert isinstance(lm, llamacpp.LlamaCppLM)
    assert (lm.path, lm.name, lm.lora) == (packaged.smollm2_path(), "smollm2", None)
    assert models.llama_cpp_generator("smollm2") is lm  # one per process
    assert models.llama_cpp_generator("HuggingFaceTB/SmolLM2-135M-Instruct") is None  # hub id
    monkeypatch.setenv("LMM_GPU", "1")
    assert models.llama_cpp_generator("smollm2") is None  # a GPU: transformers + fastgen
    assert models.llama_cpp_generator("smollm2", device="cpu") is not None
    monkeypatch.setenv("LMM_RUNTIME", "transformers")
    assert models.llama_cpp_generator("smollm2", device="cpu") is None


def test_runtime_setting_errors_say_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMM_RUNTIME", "vllm")
    with pytest.raises(LmmError, match="LMM_RUNTIME must be one of"):
        models.llama_cpp_generator("smollm2")
    monkeypatch.setenv("LMM_RUNTIME", "llama.cpp")
    with pytest.raises(LmmError, match="GGUF models only"):
        models.llama_cpp_generator("Qwen/Qwen2.5-0.5B-Instruct")


def test_default_threads_leave_a_core_free(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LMM_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert llamacpp.default_threads() == 7
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert llamacpp.default_threads() == 1
    monkeypatch.setenv("LMM_THREADS", "3")
    assert llamacpp.default_threads() == 3


@needs_llama
@pytest.mark.slow
def test_smollm2_answers_through_llama_cpp() -> None:
    lm = models.generator("smollm2")
    assert isinstance(lm, llamacpp.LlamaCppLM)
    reply = lm.generate([{"role": "user", "content": "What is the capital of France?"}], 16)
    assert reply.strip() and "<|im_" not in reply  # a reply, in the GGUF's chat template
    assert lm.stats.calls == 1 and 0 < lm.stats.new_tokens <= 16
