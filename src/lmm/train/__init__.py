"""Training the memory model: continual pre-training (CPT) on sessions, then SFT on pairs.

Modules, in the order a run uses them: `config` (a frozen dataclass per stage), `data` (JSONL rows
-> token batches), `model` (the model to train, LoRA, save, merge; `lmm.lm.trained` loads a
finished run for inference), `parallel` (DDP and FSDP), `loss` (chunked cross-entropy), `loop`
(the training loop). `pairs` and `synthesis` build the rows (on `base`'s types) and import no
torch; nothing here is imported by the hook or MCP paths.
"""
