"""A Jupyter-first workbench for synthetic fine-tuning data: generate, augment, judge, dedup, audit and export with LLMs.

You want to fine-tune a small, cheap model for your task and have no labelled data. You write
10–50 seed examples, let a strong model generate thousands more, and then you must **filter,
deduplicate and audit** that data before training on it: synthetic data inherits the generator's
biases, collapses into near-copies, and drifts from real data.

synthbench makes each step a chapter of this book, and ships the same code as a pip package and
a CLI:

```
seeds + task spec ─► generate ─► augment ─► validate ─► judge ─► dedup ─► audit ─► export ─► evaluate (TSTR)
```

## Chapters and modules

One chapter per module; each page shows the code, a live example and its output, and the tests.

| chapter | module | what it does |
|---|---|---|
| [00 The example table](00_core.ipynb) | [`synthbench.core`](https://synthbench.github.io/synthbench/api/synthbench.core.html) | One row per example: the one currency every synthbench stage takes and returns. |
| [01 Task spec](01_spec.ipynb) | [`synthbench.spec`](https://synthbench.github.io/synthbench/api/synthbench.spec.html) | `task.yaml`: what the data is for, what a good output looks like, and how the examples should be spread. |
| [02 Formats](02_formats.ipynb) | [`synthbench.formats`](https://synthbench.github.io/synthbench/api/synthbench.formats.html) | Load seeds and datasets from JSONL, JSON, CSV and Parquet in ShareGPT, Alpaca, OpenAI chat and text/label form; write them back out without losing a character. |
| [03 Validate](03_validate.ipynb) | [`synthbench.validate`](https://synthbench.github.io/synthbench/api/synthbench.validate.html) | Rule checks that need no model: turn structure, empty turns, output format, labels, lengths. |
| [04 Export](04_export.ipynb) | [`synthbench.export`](https://synthbench.github.io/synthbench/api/synthbench.export.html) | Write the dataset in the shape a trainer wants, split it, mix in real data, and describe it in a card. |
| [05 The stage contract](05_stage.ipynb) | [`synthbench.stage`](https://synthbench.github.io/synthbench/api/synthbench.stage.html) | One shape for every stage: `fn(df, *, ctx, **params) -> StageResult`. |
| [06 Hugging Face datasets and an honest card](06_hub.ipynb) | [`synthbench.hub`](https://synthbench.github.io/synthbench/api/synthbench.hub.html) | Save the kept rows as a `datasets.DatasetDict` (train/validation/test, lineage families kept together) with a Hub-style card that says where the data came from. |
| [10 The LLM engine](10_llm.ipynb) | [`synthbench.llm`](https://synthbench.github.io/synthbench/api/synthbench.llm.html) | One client for every model call: fast, cached, rate-limited, retried, costed and kept under budget. |
| [11 Cost and tokens](11_cost.ipynb) | [`synthbench.cost`](https://synthbench.github.io/synthbench/api/synthbench.cost.html) | What a run will cost before you pay for it: offline token counts, a price table, and estimates. |
| [12 The embedded local model](12_local.ipynb) | [`synthbench.local`](https://synthbench.github.io/synthbench/api/synthbench.local.html) | SmolLM2-135M-Instruct on a loopback llama.cpp server: the default model, with no key and no network. |
| [13 The LLM response cache](13_llmcache.ipynb) | [`synthbench.llmcache`](https://synthbench.github.io/synthbench/api/synthbench.llmcache.html) | A persistent SQLite cache of model answers, so a re-run never pays twice and a killed run loses nothing that finished. |
| [14 Batch API runs](14_batch.ipynb) | [`synthbench.batch`](https://synthbench.github.io/synthbench/api/synthbench.batch.html) | Big offline runs at half price through the OpenAI Batch API, with the same results, cache and budget as `chat_many`. |
| [15 The same pipeline on Ray Data](15_rayengine.ipynb) | [`synthbench.rayengine`](https://synthbench.github.io/synthbench/api/synthbench.rayengine.html) | `engine='ray'`: row-local stages mapped over batches, dedup as a shuffle, embeddings from an actor pool, one shared rate limit and budget. |
| [20 Generate](20_generate.ipynb) | [`synthbench.generate`](https://synthbench.github.io/synthbench/api/synthbench.generate.html) | From 10-50 seed examples and a task spec to thousands of varied, on-spec examples. |
| [21 Evol-Instruct](21_evol.ipynb) | [`synthbench.evol`](https://synthbench.github.io/synthbench/api/synthbench.evol.html) | Evolve examples through levels of difficulty (simple -> moderate -> complex -> edge_case), and drop failed evolutions with the reason recorded. |
| [22 Augment](22_augment.ipynb) | [`synthbench.augment`](https://synthbench.github.io/synthbench/api/synthbench.augment.html) | Expand existing data: paraphrases, back-translations, context variations and edge-case variants, each checked against its parent. |
| [23 Preference pairs](23_prefs.ipynb) | [`synthbench.prefs`](https://synthbench.github.io/synthbench/api/synthbench.prefs.html) | Sample several replies per prompt, judge them, and keep chosen/rejected pairs with a clear margin for DPO (TRL's format), with the judge's length bias reported. |
| [30 Embeddings](30_embed.ipynb) | [`synthbench.embed`](https://synthbench.github.io/synthbench/api/synthbench.embed.html) | One vector per example, computed once: a local sentence-transformers model by default, any OpenAI-compatible embeddings endpoint as an alternative, and a disk cache keyed by content and model. |
| [31 Judge](31_judge.ipynb) | [`synthbench.judge`](https://synthbench.github.io/synthbench/api/synthbench.judge.html) | Score every example with an LLM judge on several criteria, filter by threshold or bottom X%, and calibrate the judge on known-bad examples before trusting it. |
| [32 Dedup](32_dedup.ipynb) | [`synthbench.dedup`](https://synthbench.github.io/synthbench/api/synthbench.dedup.html) | Mark exact, near-duplicate (MinHash) and semantic (embedding) duplicates, keep the best row of each group, and check generated data against its seeds (copying) and training data against eval data (leakage). |
| [33 Human review](33_review.ipynb) | [`synthbench.review`](https://synthbench.github.io/synthbench/api/synthbench.review.html) | Page through a sample, accept or reject each example with a note; labels go to a JSONL file next to the data, appended as you go. |
| [34 PII check](34_pii.ipynb) | [`synthbench.pii`](https://synthbench.github.io/synthbench/api/synthbench.pii.html) | Flag emails, phone numbers, card numbers, addresses and names in generated and real rows, and redact them before export. |
| [40 Metrics](40_metrics.ipynb) | [`synthbench.metrics`](https://synthbench.github.io/synthbench/api/synthbench.metrics.html) | Balance, length, vocabulary and embedding diversity, mode collapse, bias and synthetic-vs-real: plain functions over the example table. |
| [41 Embedding map](41_embedmap.ipynb) | [`synthbench.embedmap`](https://synthbench.github.io/synthbench/api/synthbench.embedmap.html) | A 2-D map of the examples (UMAP, or PCA for tiny tables) with clusters, sizes and representative texts. |
| [42 Audit](42_audit.ipynb) | [`synthbench.audit`](https://synthbench.github.io/synthbench/api/synthbench.audit.html) | One call, `audit(df)`: balance, length, vocabulary, embedding map, bias and real-vs-synthetic, as findings, numbers, a live dashboard and a shareable HTML report. |
| [50 Does the data work? Train on synthetic, test on real](50_tstr.ipynb) | [`synthbench.tstr`](https://synthbench.github.io/synthbench/api/synthbench.tstr.html) | `tstr`: fit a light classifier on the synthetic set, score it on held-out real data, and compare it with the same classifier trained on real data of equal size. |
| [51 Does the data work? Evaluate a model's outputs](51_evalgen.ipynb) | [`synthbench.evalgen`](https://synthbench.github.io/synthbench/api/synthbench.evalgen.html) | `evaluate_outputs`: ask a model every prompt of an eval set, check its replies against the task spec's format rules, score them with a judge, and put base and fine-tuned models side by side. |
| [52 Fine-tune a student on the exported data](52_finetune.ipynb) | [`synthbench.finetune`](https://synthbench.github.io/synthbench/api/synthbench.finetune.html) | `finetune`: LoRA on the embedded SmolLM2-135M (CPU or GPU), an OpenAI fine-tuning job, or a ready-to-run recipe for an 8B student on a rented GPU. |
| [53 Does the student do the task? Scoring on held-out real data](53_evaluate.ipynb) | [`synthbench.evaluate`](https://synthbench.github.io/synthbench/api/synthbench.evaluate.html) | `evaluate`: a student's replies on the seed set's held-out real examples, scored for format compliance, task fields, exact match or accuracy and macro-F1, each with a bootstrap 95% interval; `compare_students` puts base and fine-tuned side by side. |
| [54 Does the data work?](54_datawork.ipynb) | [`synthbench.datawork`](https://synthbench.github.io/synthbench/api/synthbench.datawork.html) | `data_report`: one report per run that puts the student evaluation, TSTR and the data audit side by side, with the rows kept and dropped and a one-line verdict. |
| [60 Runs: a pipeline you can stop, resume, repeat and compare](60_workbench.ipynb) | [`synthbench.workbench`](https://synthbench.github.io/synthbench/api/synthbench.workbench.html) | A run directory with every stage's table and a manifest; pipelines declared in YAML; `synthbench run` and `synthbench demo`. |
| [61 Prompt lab: iterate on the generation prompt](61_promptlab.ipynb) | [`synthbench.promptlab`](https://synthbench.github.io/synthbench/api/synthbench.promptlab.html) | Edit the template, generate a handful of examples, look at validity, judge scores, diversity and cost, keep two versions side by side, accept a batch. |
| [90 Command line](90_cli.ipynb) | [`synthbench.cli`](https://synthbench.github.io/synthbench/api/synthbench.cli.html) | `synthbench <command> ...`: the same functions as the notebooks, from scripts and the shell. |
| [95 The scripted teacher](95_testing.ipynb) | [`synthbench.testing`](https://synthbench.github.io/synthbench/api/synthbench.testing.html) | The scripted capable teacher: an OpenAI-compatible loopback server that answers like a capable model, with planted defects, a ground-truth judge and wire faults. |

Tutorials (end to end, not exported): [task_api](tutorials/task_api.ipynb), [support_tickets](tutorials/support_tickets.ipynb), [grounded_policy](tutorials/grounded_policy.ipynb), [audit_existing](tutorials/audit_existing.ipynb), [ablation](tutorials/ablation.ipynb). How the pieces fit (layout, the stage contract, how a row flows through a run): the [architecture page](https://synthbench.github.io/synthbench/architecture.html); `synthbench run --explain pipeline.yaml` prints the flow of one pipeline.

Modules:

- `synthbench.dedup`: Mark exact, near-duplicate (MinHash) and semantic (embedding) duplicates, keep the best row of each group, and check generated data against its seeds (copying) and training data against eval data (leakage).
- `synthbench.embed`: One vector per example, computed once: a local sentence-transformers model by default, any OpenAI-compatible embeddings endpoint as an alternative, and a disk cache keyed by content and model.
- `synthbench.formats`: Load seeds and datasets from JSONL, JSON, CSV and Parquet in ShareGPT, Alpaca, OpenAI chat and text/label form; write them back out without losing a character."""

__version__ = "0.0.1"
