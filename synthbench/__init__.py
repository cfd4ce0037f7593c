"""A Jupyter-first workbench for synthetic fine-tuning data: generate, augment, judge, dedup, audit and export with LLMs.

Modules:

- `synthbench.dedup`: Mark exact, near-duplicate (MinHash) and semantic (embedding) duplicates, keep the best row of each group, and check generated data against its seeds (copying) and training data against eval data (leakage).
- `synthbench.embed`: One vector per example, computed once: a local sentence-transformers model by default, any OpenAI-compatible embeddings endpoint as an alternative, and a disk cache keyed by content and model.
- `synthbench.formats`: Load seeds and datasets from JSONL, JSON, CSV and Parquet in ShareGPT, Alpaca, OpenAI chat and text/label form; write them back out without losing a character."""

__version__ = "0.0.1"
