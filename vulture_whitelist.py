"""Names vulture reports as unused in src/ that are used where it cannot see: `make lint` runs
`vulture src scripts vulture_whitelist.py --min-confidence 60`. Each entry says who uses it.
This file is never imported (`_` stands for any object)."""

# ---- read by tests, bench/ or scripts/ (test doubles and the seams they drive)
ScriptedLM  # lm/models.py: the scripted model every recall, synth and digest test drives
tiny_model  # lm/models.py: a random tiny causal LM for the model, LoRA and fastgen tests
unload  # lm/models.py: frees a loaded model (tests/test_models.py, bench/cpu_runtime.py)
main_branch  # conversation.py: the CLI's branch graph (tests/test_transcripts.py, docs)
or_match  # retrieve/search.py: search's MATCH string (tests/test_search.py)
wait_idle  # serve/background.py: waits for the learning job (tests, bench/living_loop.py)
dump  # store/cognitions.py: every cognition row, for the idempotence tests
run_task  # evals/tasks.py: one task on one configuration (scripts/study.py, tests)
export_inputs  # scripts/study.py: run from docs/experiments.md (python -c)
audit_error  # evals/locomo.py: the LoCoMo audit's verdict on a question (tests/test_evals.py)
FILE_FIELDS  # config.py: where config.toml holds each of its settings (tests/test_config.py, README)
FILE_ONLY  # config.py: the settings with no variable (tests/test_config.py)
_.new_tokens  # lm GenerationStats: read by bench/synth_eval.py, bench/digest.py and tests
new_tokens
_.variant  # an embedder's weights variant: bench caches key on it (bench/locomo_recall.py)
proposed  # memory/extract_lm.py LMStats: the LM extractor's counters (tests/test_extract_lm.py)
accepted
_.proposed
_.accepted

# ---- dataclass fields read through dataclasses.asdict (the CLI's --json output)
turns_copied  # ingest/run.py IngestReport
turns_opted_out
turns_purged
_.turns_copied
_.turns_opted_out
_.turns_purged

# ---- attributes and methods that another library reads
_.row_factory  # sqlite3.Connection (store/db.py)
_.whitespace_split  # shlex.shlex (text/shell.py)
_.commenters
_.pad_token  # transformers tokenizers (lm/models.py, train/model.py)
_.pre_tokenizer  # tokenizers.Tokenizer (lm/models.py)
_.use_cache  # a transformers model's config (train/loop.py)
_.found_inf  # a torch optimizer's flag its fused step skips on (train/loop.py)
_.graph_optimization_level  # onnxruntime.SessionOptions (retrieve/embed_onnx.py)
_.intra_op_num_threads
_.inter_op_num_threads
_.returncode  # subprocess.Popen: set so the never-waited-for job raises no ResourceWarning
_._lmm_gate_up  # lm/fastgen.py: read back through the module's __dict__
strict  # serve/hooks.py _Decoding: the options the C JSON scanner reads
object_hook
object_pairs_hook
parse_float
parse_int
parse_constant
_.padding_side  # transformers tokenizers read it (scripts/batch_reader.py)
server_version  # http.server.BaseHTTPRequestHandler (ui/server.py)
protocol_version
_.do_GET
_.do_POST
_.log_message
_.daemon_threads  # socketserver.ThreadingMixIn

# ---- module-level dunders Python itself calls
__getattr__  # lmm/__init__.py: the facade's lazy names (PEP 562)
__dir__
