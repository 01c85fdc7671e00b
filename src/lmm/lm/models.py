"""Local causal LMs and OpenAI-compatible endpoints behind one small seam, `TextGenerator`."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmm import config
from lmm.errors import LmmError, MissingExtra
from lmm.lm.base import Message, TextGenerator
from lmm.lm.loaded import LoadedModel, pick_device, transformers_module
from lmm.lm.packaged import PACKAGED

log = logging.getLogger(__name__)

# ---- loading

_LOADED: dict[tuple[str, str], LoadedModel] = {}  # (name, device) -> model; keeps a server warm


_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


def load(name_or_path: str | Path, device: str = "auto") -> LoadedModel:
    """Load a causal LM by packaged name, local folder, `.gguf` file or hub id; cached per process.

    CPU gets float32, GPU bfloat16. GGUF weights are dequantised to that dtype by transformers
    (needs the `gguf` package), which takes seconds per 100M parameters.
    """
    device = pick_device(device)
    name = str(name_or_path)
    if (name, device) in _LOADED:
        return _LOADED[(name, device)]
    if Path(name).expanduser().is_dir():  # a `lmm train` run or LoRA adapter folder
        from lmm.lm.trained import is_trained_dir, load_trained

        if is_trained_dir(Path(name).expanduser()):
            _LOADED[(name, device)] = load_trained(Path(name).expanduser(), device=device)
            return _LOADED[(name, device)]
    tf = transformers_module()
    import torch

    if threads := int(config.settings().threads or 0):  # CPU threads; torch's default: cores
        torch.set_num_threads(threads)
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    if name in PACKAGED:
        source, gguf = PACKAGED[name](), None
    else:
        source, gguf = Path(name).expanduser(), None
    if source.is_file():
        if source.suffix != ".gguf":
            raise LmmError(f"{source} is not a .gguf file; pass a model folder or a .gguf file")
        source, gguf = source.parent, source.name
        if importlib.util.find_spec("gguf") is None:
            raise MissingExtra("llm", "gguf")
    if not source.exists() and not _HUB_ID.fullmatch(name):
        raise LmmError(
            f"no model {name!r}: not a packaged name ({', '.join(PACKAGED)}), a folder or a .gguf "
            "file here, nor a hub id (owner/name)"
        )  # never a network lookup for a typo
    where = str(source) if source.exists() else name  # else a hub id, resolved by transformers
    start = time.perf_counter()
    try:
        kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
        tokenizer = tf.AutoTokenizer.from_pretrained(where, **kwargs)
        model = tf.AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **kwargs)
    except OSError as exc:
        raise LmmError(
            f"cannot load model {name!r} ({exc.__class__.__name__}: {str(exc)[:200]}). "
            f"Pass a packaged name ({', '.join(PACKAGED)}), a local folder or .gguf file, or "
            f"download a hub model while online: huggingface-cli download {name}"
        ) from exc
    model.to(device).eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm = LoadedModel(model, tokenizer, name, device, time.perf_counter() - start)
    log.info("loaded %s on %s in %.1fs", name, device, lm.load_seconds)
    _LOADED[(name, device)] = lm
    return lm


def unload(name: str | None = None) -> None:
    """Drop one cached model (all devices), or every one with `name=None`."""
    for key in [k for k in _LOADED if name is None or k[0] == name]:
        del _LOADED[key]


# ---- OpenAI-compatible endpoint


@dataclass
class EndpointLM:
    """A chat-completions server the user runs or pays for (llama.cpp, vLLM, Ollama, OpenAI...).

    `base_url` may end in `/v1` or not; the key is read from the environment variable named by
    `api_key_env` at call time, so it is never stored in a config file.
    """

    base_url: str
    model: str
    api_key_env: str | None = None
    temperature: float = 0.0
    timeout: float = 120.0
    stop: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.model}@{self.base_url}"

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")

    def generate(self, messages: list[Message], max_new_tokens: int = 256) -> str:
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise LmmError(f"set the environment variable {self.api_key_env} to the API key")
            headers["Authorization"] = f"Bearer {key}"
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_new_tokens,
            "temperature": self.temperature,
        }
        if self.stop:
            body["stop"] = list(self.stop)
        req = urllib.request.Request(self.url, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                data = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise LmmError(
                f"{self.url} answered HTTP {exc.code}: {detail}; check the model name and key"
            ) from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            raise LmmError(f"cannot reach {self.url} ({exc}); is the server running?") from exc
        try:
            return str(data["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError) as exc:
            raise LmmError(f"{self.url} gave no chat completion: {str(data)[:300]}") from exc


DEFAULT_MODEL = "smollm2"


def generator(spec: str | None = None, device: str = "auto") -> TextGenerator:
    """The text generator named by `spec`, else `$LMM_MODEL`, else the packaged SmolLM2.

    On a CPU a GGUF model runs through llama.cpp when the `cpu` extra is installed
    (`llama_cpp_generator`; several times faster than transformers, docs/benchmarks.md).
    A spec starting with http:// or https:// is an OpenAI-compatible endpoint; its model name
    comes from `$LMM_ENDPOINT_MODEL` and its key from the variable named in `$LMM_ENDPOINT_KEY_ENV`.
    Anything else goes to `load` (packaged name, folder, .gguf file or hub id).
    """
    env = config.settings()
    spec = spec or env.model or DEFAULT_MODEL
    if spec.startswith(("http://", "https://")):
        return EndpointLM(base_url=spec, model=env.endpoint_model, api_key_env=env.endpoint_key_env)
    if device in ("auto", "cpu") and (lm := llama_cpp_generator(spec, device)) is not None:
        return lm
    return load(spec, device=device)


RUNTIMES = ("auto", "llama.cpp", "transformers")


def llama_cpp_generator(spec: str, device: str = "auto") -> TextGenerator | None:
    """`spec` through llama.cpp when it names a GGUF model (a packaged name, a .gguf file, or a
    trained LoRA adapter over one) and the runtime fits: `$LMM_RUNTIME` = llama.cpp always,
    transformers never, auto (default) when the `cpu` extra is installed and no GPU is here
    (a GPU runs transformers with the compiled decoder). None: use `load`."""
    from lmm.lm import llamacpp, speed

    runtime = config.settings().runtime
    if runtime not in RUNTIMES:
        raise LmmError(f"LMM_RUNTIME must be one of {', '.join(RUNTIMES)} (got {runtime!r})")
    if runtime == "transformers":
        return None
    if runtime == "auto" and (
        not llamacpp.available() or (device == "auto" and speed.gpu_available())
    ):
        return None
    path = Path(spec).expanduser()
    if spec in PACKAGED:
        gguf: Path | None = PACKAGED[spec]()
        adapter = None
    elif path.is_file() and path.suffix == ".gguf":
        gguf, adapter = path, None
    elif path.is_dir():
        from lmm.lm import lora_gguf

        found = lora_gguf.for_llama_cpp(path)
        gguf, adapter = found if found else (None, None)
    else:
        gguf = adapter = None
    if gguf is None:
        if runtime == "llama.cpp":
            raise LmmError(
                f"LMM_RUNTIME=llama.cpp runs GGUF models only; {spec!r} is not one (pass a "
                f"packaged name, a .gguf file or a LoRA run over one, or unset LMM_RUNTIME)"
            )
        return None
    return llamacpp.load(gguf, spec, adapter)


def warm_decoder(lm: TextGenerator) -> None:
    """For a model loaded on a GPU, build its fast decoder (`lmm.lm.fastgen`: compile, CUDA-graph
    capture; about a minute) for prompts up to 2,048 tokens, so a long-lived server pays that
    before its first request; nothing for other generators."""
    if isinstance(lm, LoadedModel) and str(lm.device).startswith("cuda"):
        from lmm.lm import fastgen

        fastgen.warm(lm.model, tokens=2048)


# ---- fakes and a tiny real model for tests


@dataclass
class ScriptedLM:
    """Deterministic fake: returns `replies` in order (then `default`), or `respond(messages)`.

    Records every prompt in `calls`, so tests can assert on what the model was asked.
    """

    replies: list[str] = field(default_factory=list)
    default: str = ""
    respond: Callable[[list[Message]], str] | None = None
    name: str = "scripted"
    calls: list[list[Message]] = field(default_factory=list)

    def generate(self, messages: list[Message], max_new_tokens: int = 256) -> str:
        self.calls.append(messages)
        if self.respond is not None:
            return self.respond(messages)
        return self.replies.pop(0) if self.replies else self.default


CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_model(seed: int = 0, hidden: int = 32, layers: int = 2) -> LoadedModel:
    """A randomly initialised Qwen2 LM with a byte-level tokenizer, built offline in well
    under a second: real `generate`, training and LoRA code paths without any download."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tf = transformers_module()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(specials + alphabet)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = tf.PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=specials[1:],
    )
    tokenizer.chat_template = CHATML
    config = tf.Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=False,  # tied random weights just repeat the last input token
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    torch.manual_seed(seed)
    model = tf.Qwen2ForCausalLM(config).eval()
    return LoadedModel(model, tokenizer, f"tiny-qwen2-{hidden}x{layers}", "cpu")
