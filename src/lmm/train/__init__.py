"""Training the memory model: continual pre-training (CPT) on sessions, then SFT on pairs."""
