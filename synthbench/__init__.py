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

The package is laid out by concern, and the chapter numbers follow it: 00–02 the example table, the task spec and every file format (`synthbench.core`, `.spec`, `.formats`); 05–07 running a pipeline (`synthbench.run`: the stage contract, the run folder, the Ray engine); 10–15 model calls (`synthbench.llm`: the engine, cost, the local model, the response cache, batch runs, embeddings); 20–37 the stages that make and filter rows (`synthbench.stages`); 40–54 measuring the data and the student (`synthbench.analysis`); 60–61 widgets for people (`synthbench.ui`); 90 the command line and 95 the scripted teacher used by the tests.

| chapter | module | what it does |
|---|---|---|
| [00 The example table](00_core.ipynb) | [`synthbench.core`](https://synthbench.github.io/synthbench/api/synthbench.core.html) | One row per example: the one currency every synthbench stage takes and returns. |
| [01 Task spec](01_spec.ipynb) | [`synthbench.spec`](https://synthbench.github.io/synthbench/api/synthbench.spec.html) | `task.yaml`: what the data is for, what a good output looks like, and how the examples should be spread. |
| [02 Formats](02_formats.ipynb) | [`synthbench.formats`](https://synthbench.github.io/synthbench/api/synthbench.formats.html) | Load seeds and datasets from JSONL, JSON, CSV and Parquet in ShareGPT, Alpaca, OpenAI chat and text/label form; write them back out without losing a character. |
| [05 The stage contract](05_stage.ipynb) | [`synthbench.run.stage`](https://synthbench.github.io/synthbench/api/synthbench.run.stage.html) | One shape for every stage: `fn(df, *, ctx, **params) -> StageResult`. |
| [06 Runs: a pipeline you can stop, resume, repeat and compare](06_workbench.ipynb) | [`synthbench.run.workbench`](https://synthbench.github.io/synthbench/api/synthbench.run.workbench.html) | A run directory with every stage's table and a manifest; pipelines declared in YAML; `synthbench run` and `synthbench demo`. |
| [07 The same pipeline on Ray Data](07_rayengine.ipynb) | [`synthbench.run.rayengine`](https://synthbench.github.io/synthbench/api/synthbench.run.rayengine.html) | `engine='ray'`: row-local stages mapped over batches, dedup as a shuffle, embeddings from an actor pool, one shared rate limit and budget. |
| [10 The LLM engine](10_llm.ipynb) | [`synthbench.llm.engine`](https://synthbench.github.io/synthbench/api/synthbench.llm.engine.html) | One client for every model call: fast, cached, rate-limited, retried, costed and kept under budget. |
| [11 Cost and tokens](11_cost.ipynb) | [`synthbench.llm.cost`](https://synthbench.github.io/synthbench/api/synthbench.llm.cost.html) | What a run will cost before you pay for it: offline token counts, a price table, and estimates. |
| [12 The embedded local model](12_local.ipynb) | [`synthbench.llm.local`](https://synthbench.github.io/synthbench/api/synthbench.llm.local.html) | SmolLM2-135M-Instruct on a loopback llama.cpp server: the default model, with no key and no network. |
| [13 The LLM response cache](13_llmcache.ipynb) | [`synthbench.llm.cache`](https://synthbench.github.io/synthbench/api/synthbench.llm.cache.html) | A persistent SQLite cache of model answers, so a re-run never pays twice and a killed run loses nothing that finished. |
| [14 Batch API runs](14_batch.ipynb) | [`synthbench.llm.batch`](https://synthbench.github.io/synthbench/api/synthbench.llm.batch.html) | Big offline runs at half price through the OpenAI Batch API, with the same results, cache and budget as `chat_many`. |
| [15 Embeddings](15_embed.ipynb) | [`synthbench.llm.embed`](https://synthbench.github.io/synthbench/api/synthbench.llm.embed.html) | One vector per example, computed once: a local sentence-transformers model by default, any OpenAI-compatible embeddings endpoint as an alternative, and a disk cache keyed by content and model. |
| [20 Generate](20_generate.ipynb) | [`synthbench.stages.generate`](https://synthbench.github.io/synthbench/api/synthbench.stages.generate.html) | From 10-50 seed examples and a task spec to thousands of varied, on-spec examples. |
| [21 Evol-Instruct](21_evol.ipynb) | [`synthbench.stages.evol`](https://synthbench.github.io/synthbench/api/synthbench.stages.evol.html) | Evolve examples through levels of difficulty (simple -> moderate -> complex -> edge_case), and drop failed evolutions with the reason recorded. |
| [22 Augment](22_augment.ipynb) | [`synthbench.stages.augment`](https://synthbench.github.io/synthbench/api/synthbench.stages.augment.html) | Expand existing data: paraphrases, back-translations, context variations and edge-case variants, each checked against its parent. |
| [23 Preference pairs](23_prefs.ipynb) | [`synthbench.stages.prefs`](https://synthbench.github.io/synthbench/api/synthbench.stages.prefs.html) | Sample several replies per prompt, judge them, and keep chosen/rejected pairs with a clear margin for DPO (TRL's format), with the judge's length bias reported. |
| [30 Validate](30_validate.ipynb) | [`synthbench.stages.validate`](https://synthbench.github.io/synthbench/api/synthbench.stages.validate.html) | Rule checks that need no model: turn structure, empty turns, output format, labels, lengths. |
| [31 Judge](31_judge.ipynb) | [`synthbench.stages.judge`](https://synthbench.github.io/synthbench/api/synthbench.stages.judge.html) | Score every example with an LLM judge on several criteria, filter by threshold or bottom X%, and calibrate the judge on known-bad examples before trusting it. |
| [32 Dedup](32_dedup.ipynb) | [`synthbench.stages.dedup`](https://synthbench.github.io/synthbench/api/synthbench.stages.dedup.html) | Mark exact, near-duplicate (MinHash) and semantic (embedding) duplicates, keep the best row of each group, and check generated data against its seeds (copying) and training data against eval data (leakage). |
| [34 PII check](34_pii.ipynb) | [`synthbench.stages.pii`](https://synthbench.github.io/synthbench/api/synthbench.stages.pii.html) | Flag emails, phone numbers, card numbers, addresses and names in generated and real rows, and redact them before export. |
| [35 Export](35_export.ipynb) | [`synthbench.stages.export`](https://synthbench.github.io/synthbench/api/synthbench.stages.export.html) | Write the dataset in the shape a trainer wants, split it, mix in real data, and describe it in a card. |
| [36 Hugging Face datasets and an honest card](36_hub.ipynb) | [`synthbench.stages.hub`](https://synthbench.github.io/synthbench/api/synthbench.stages.hub.html) | Save the kept rows as a `datasets.DatasetDict` (train/validation/test, lineage families kept together) with a Hub-style card that says where the data came from. |
| [37 Fine-tune a student on the exported data](37_finetune.ipynb) | [`synthbench.stages.finetune`](https://synthbench.github.io/synthbench/api/synthbench.stages.finetune.html) | `finetune`: LoRA on the embedded SmolLM2-135M (CPU or GPU), an OpenAI fine-tuning job, or a ready-to-run recipe for an 8B student on a rented GPU. |
| [40 Metrics](40_metrics.ipynb) | [`synthbench.analysis.metrics`](https://synthbench.github.io/synthbench/api/synthbench.analysis.metrics.html) | Balance, length, vocabulary and embedding diversity, mode collapse, bias and synthetic-vs-real: plain functions over the example table. |
| [41 Embedding map](41_embedmap.ipynb) | [`synthbench.analysis.embedmap`](https://synthbench.github.io/synthbench/api/synthbench.analysis.embedmap.html) | A 2-D map of the examples (UMAP, or PCA for tiny tables) with clusters, sizes and representative texts. |
| [42 Audit](42_audit.ipynb) | [`synthbench.analysis.audit`](https://synthbench.github.io/synthbench/api/synthbench.analysis.audit.html) | One call, `audit(df)`: balance, length, vocabulary, embedding map, bias and real-vs-synthetic, as findings, numbers, a live dashboard and a shareable HTML report. |
| [50 Does the data work? Train on synthetic, test on real](50_tstr.ipynb) | [`synthbench.analysis.tstr`](https://synthbench.github.io/synthbench/api/synthbench.analysis.tstr.html) | `tstr`: fit a light classifier on the synthetic set, score it on held-out real data, and compare it with the same classifier trained on real data of equal size. |
| [51 Does the data work? Evaluate a model's outputs](51_evalgen.ipynb) | [`synthbench.analysis.evalgen`](https://synthbench.github.io/synthbench/api/synthbench.analysis.evalgen.html) | `evaluate_outputs`: ask a model every prompt of an eval set, check its replies against the task spec's format rules, score them with a judge, and put base and fine-tuned models side by side. |
| [53 Does the student do the task? Scoring on held-out real data](53_evaluate.ipynb) | [`synthbench.analysis.evaluate`](https://synthbench.github.io/synthbench/api/synthbench.analysis.evaluate.html) | `evaluate`: a student's replies on the seed set's held-out real examples, scored for format compliance, task fields, exact match or accuracy and macro-F1, each with a bootstrap 95% interval; `compare_students` puts base and fine-tuned side by side. |
| [54 Does the data work?](54_datawork.ipynb) | [`synthbench.analysis.datawork`](https://synthbench.github.io/synthbench/api/synthbench.analysis.datawork.html) | `data_report`: one report per run that puts the student evaluation, TSTR and the data audit side by side, with the rows kept and dropped and a one-line verdict. |
| [60 Human review](60_review.ipynb) | [`synthbench.ui.review`](https://synthbench.github.io/synthbench/api/synthbench.ui.review.html) | Page through a sample, accept or reject each example with a note; labels go to a JSONL file next to the data, appended as you go. |
| [61 Prompt lab: iterate on the generation prompt](61_promptlab.ipynb) | [`synthbench.ui.promptlab`](https://synthbench.github.io/synthbench/api/synthbench.ui.promptlab.html) | Edit the template, generate a handful of examples, look at validity, judge scores, diversity and cost, keep two versions side by side, accept a batch. |
| [90 Command line](90_cli.ipynb) | [`synthbench.cli`](https://synthbench.github.io/synthbench/api/synthbench.cli.html) | `synthbench <command> ...`: the same functions as the notebooks, from scripts and the shell. |
| [95 The scripted teacher](95_testing.ipynb) | [`synthbench.testing`](https://synthbench.github.io/synthbench/api/synthbench.testing.html) | The scripted capable teacher: an OpenAI-compatible loopback server that answers like a capable model, with planted defects, a ground-truth judge and wire faults. |

Tutorials (end to end, not exported): [task_api](tutorials/task_api.ipynb), [support_tickets](tutorials/support_tickets.ipynb), [grounded_policy](tutorials/grounded_policy.ipynb), [audit_existing](tutorials/audit_existing.ipynb), [ablation](tutorials/ablation.ipynb). How the pieces fit (layout, the stage contract, how a row flows through a run): the [architecture page](https://synthbench.github.io/synthbench/architecture.html); `synthbench run --explain pipeline.yaml` prints the flow of one pipeline.

Modules:

- `synthbench.formats`: Load seeds and datasets from JSONL, JSON, CSV and Parquet in ShareGPT, Alpaca, OpenAI chat and text/label form; write them back out without losing a character.
- `synthbench.llm.embed`: One vector per example, computed once: a local sentence-transformers model by default, any OpenAI-compatible embeddings endpoint as an alternative, and a disk cache keyed by content and model.
- `synthbench.stages.dedup`: Mark exact, near-duplicate (MinHash) and semantic (embedding) duplicates, keep the best row of each group, and check generated data against its seeds (copying) and training data against eval data (leakage)."""

__version__ = "0.0.1"
