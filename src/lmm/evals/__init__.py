"""Evaluation: metrics, held-out sets from real history, LoCoMo and MemoryCode harnesses,
reports. Evals are Task objects run against every memory configuration (see tasks.py)."""
