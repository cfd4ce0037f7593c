"PII check: rows/s of find_pii on a stage table (e.g. runs/NAME/07_add_seeds.parquet, repeated 4x), and NER name findings before/after the proper-noun cut. Usage: python benchmarks/bench_pii.py TABLE.parquet"

import sys, time
from synthbench.run.workbench import read_stage_table
from synthbench.stages.pii import find_pii, analyzer
import synthbench.stages.pii as P

df = read_stage_table(sys.argv[1])
analyzer('auto')
big = __import__('pandas').concat([df] * 4, ignore_index=True)
t = time.time()
f = find_pii(big)
dt = time.time() - t
print(f"{len(big)} rows in {dt:.1f}s ({len(big) / dt:.0f} rows/s): {f}")
orig = P._proper_noun_span
P._proper_noun_span = lambda r, doc: r
raw = find_pii(df)
P._proper_noun_span = orig
print(f"names/places on {len(df)} rows: without the proper-noun cut {raw.counts}, with it {find_pii(df).counts}")
