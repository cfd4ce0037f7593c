"""Dedup speed and quality, printed side by side with the targets (a benchmark, not a timed test).

1. MinHash dedup of 100k short examples (two real sentences from Python's reference docs each, 10% planted lightly edited copies):
   target < 15 s on 2 cores.
2. Embedding-similarity dedup of 100k already-embedded rows: SYNTHETIC structured vectors (topic centres + noise,
   5% planted near-duplicates at cosine ~0.97), target < 60 s. Beyond 20k rows dedup uses its IVF index; the exact
   blockwise search and the usearch HNSW index are timed on a 20k slice for comparison.
3. Labelled near-duplicate benchmark on REAL text: prose paragraphs of the Python reference shipped with CPython
   (`pydoc_data.topics`), with edited copies (reordered sentences/clauses, synonyms, typos, changed numbers and
   names; 1-3 edits each): pairwise precision / recall per method.
4. Embedding throughput of the local all-MiniLM-L6-v2 on this machine (texts/s, fresh cache).

Run: python benchmarks/bench_dedup.py [--n 100000] [--quick]
Wall times on a shared machine depend on load: the load average is printed with the figures, and CPU time too.
"""

from __future__ import annotations
import argparse, os, sys, tempfile, time
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
sys.path.insert(0, str(Path(__file__).parent))
import numpy as np
import pandas as pd
from dedup_data import labelled_near_dups, pair_prf, planted_vectors, short_examples
from synthbench.core import make_table
from synthbench.stages.dedup import dedup


def timed(f):
    t, c = time.perf_counter(), time.process_time()
    r = f()
    return r, time.perf_counter() - t, time.process_time() - c


def labels_of(d: pd.DataFrame) -> np.ndarray:
    "Predicted group label per row: the kept row's id (own id when kept)."
    return np.where(d['dup_of'] == '', d['id'], d['dup_of'])


def table(texts):
    # ids must be unique per row for the benchmark's bookkeeping; exact copies get a suffix
    return make_table([{'text': t, 'id': f'r{k}'} for k, t in enumerate(texts)], source='generated')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n', type=int, default=100_000, help='rows for the scale runs (default 100000)')
    ap.add_argument('--quick', action='store_true', help='10k rows, smaller labelled set (smoke run)')
    a = ap.parse_args(argv)
    n = 10_000 if a.quick else a.n
    print(f'cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}')
    rows = []

    # 1. MinHash at scale
    texts, true = short_examples(n, 0.1, seed=0)
    df = table(texts)
    d, wall, cpu = timed(lambda: dedup(df, 'minhash', progress=False))  # defaults: char 5-grams, 128 perm, J>=0.7
    p, r, _, _ = pair_prf(labels_of(d), true)
    rows.append(
        dict(
            figure=f'MinHash dedup, {n:,} short examples (char 5-grams, 128 perm, J>=0.7)',
            value=wall,
            unit='s wall',
            target=15 * n / 100_000,
            cpu_s=cpu,
            note=f'{n / wall:,.0f} docs/s; planted-pair precision {p:.3f} recall {r:.3f}',
        )
    )

    # 2. Embedding similarity at scale (synthetic vectors)
    X, true = planted_vectors(n, 384, seed=0)
    dfv = table([f'row {k}' for k in range(n)])
    d, wall, cpu = timed(lambda: dedup(dfv, 'embedding', embeddings=X, embedding_threshold=0.95, progress=False))
    p, r, _, _ = pair_prf(labels_of(d), true)
    mode = 'IVF: numpy k-means lists, nprobe 3, exact verify' if n > 20_000 else 'exact blockwise'
    rows.append(
        dict(
            figure=f'Embedding dedup, {n:,} pre-embedded rows (SYNTHETIC vectors, cos>=0.95, {mode})',
            value=wall,
            unit='s wall',
            target=60 * n / 100_000,
            cpu_s=cpu,
            note=f'planted-pair precision {p:.3f} recall {r:.3f}',
        )
    )
    if n > 20_000:  # the exact path on a 20k slice, for comparison
        m = 20_000
        d, wall, cpu = timed(lambda: dedup(dfv.iloc[:m], 'embedding', embeddings=X[:m], embedding_threshold=0.95, progress=False))
        p, r, _, _ = pair_prf(labels_of(d), true[:m])
        rows.append(
            dict(
                figure=f'  same, exact blockwise on the first {m:,} rows',
                value=wall,
                unit='s wall',
                target=None,
                cpu_s=cpu,
                note=f'precision {p:.3f} recall {r:.3f}',
            )
        )
        d, wall, cpu = timed(
            lambda: dedup(dfv.iloc[:m], 'embedding', embeddings=X[:m], embedding_threshold=0.95, exact_max=0, ann='usearch', progress=False)
        )
        p, r, _, _ = pair_prf(labels_of(d), true[:m])
        rows.append(
            dict(
                figure=f'  same, usearch HNSW (int8, k=10) on the first {m:,} rows',
                value=wall,
                unit='s wall',
                target=None,
                cpu_s=cpu,
                note=f'precision {p:.3f} recall {r:.3f}',
            )
        )

    # 3. Labelled near-duplicates on real text
    lt, ltrue, ledits = labelled_near_dups(300 if a.quick else 600, 200 if a.quick else 400, seed=1)
    ldf = table(lt)
    from synthbench.llm.embed import embed_texts, get_embedder

    get_embedder().st  # load the model outside the throughput timing
    with tempfile.TemporaryDirectory() as tmp:
        E, wall, cpu = timed(lambda: embed_texts(lt, cache_dir=tmp, progress=False))
        rows.append(
            dict(
                figure=f'Embedding throughput, all-MiniLM-L6-v2 on CPU ({len(lt)} paragraphs, ~{np.mean([len(t.split()) for t in lt]):.0f} words)',
                value=len(lt) / wall,
                unit='texts/s',
                target=None,
                cpu_s=cpu,
                note=f'{wall:.1f} s, fresh cache',
            )
        )
        _, wall2, _ = timed(lambda: embed_texts(lt, cache_dir=tmp, progress=False))
        rows.append(
            dict(
                figure='  same texts again (all from the disk cache)',
                value=len(lt) / wall2,
                unit='texts/s',
                target=None,
                cpu_s=None,
                note=f'{wall2:.2f} s, {wall / wall2:.0f}x faster',
            )
        )
    print(
        f'\nLabelled near-duplicate benchmark: {len(lt)} texts ({ltrue.max() + 1} real paragraphs of the Python reference, '
        f'{sum(1 for e in ledits if e)} edited copies)'
    )
    configs = [
        ('exact', dict(methods='exact')),
        ('minhash word-3 J>=0.8', dict(methods='minhash', minhash_threshold=0.8, shingle='word')),
        ('minhash word-3 J>=0.5', dict(methods='minhash', minhash_threshold=0.5, shingle='word')),
        ('minhash char-5 J>=0.7 (default)', dict(methods='minhash')),
        ('minhash char-5 J>=0.5', dict(methods='minhash', minhash_threshold=0.5)),
        ('embedding cos>=0.95', dict(methods='embedding', embedding_threshold=0.95)),
        ('embedding cos>=0.85', dict(methods='embedding', embedding_threshold=0.85)),
        ('all defaults (exact, minhash 0.7, emb 0.95)', dict(methods='all')),
        ('all (exact, minhash 0.5, emb 0.85)', dict(methods='all', minhash_threshold=0.5, embedding_threshold=0.85)),
    ]
    q = []
    edited = np.array([bool(e) for e in ledits])
    for name, kw in configs:
        d, wall, _ = timed(lambda: dedup(ldf, embeddings=E, progress=False, **kw))
        p, r, pp, tp = pair_prf(labels_of(d), ltrue)
        by_edit = {}
        lab = labels_of(d)
        for e in ('reorder', 'synonyms', 'typos', 'numbers_names'):
            idx = [k for k in range(len(lt)) if e in ledits[k]]
            # recall per edit type: edited copy ends up in the same predicted group as its original
            orig_pos = {int(ltrue[k]): k for k in range(len(lt)) if not ledits[k]}
            hit = [lab[k] == lab[orig_pos[int(ltrue[k])]] for k in idx]
            by_edit[e] = np.mean(hit) if hit else np.nan
        q.append(
            dict(
                method=name,
                precision=round(p, 3),
                recall=round(r, 3),
                pred_pairs=pp,
                true_pairs=tp,
                **{f'recall_{e}': round(v, 3) for e, v in by_edit.items()},
                seconds=round(wall, 2),
            )
        )
    with pd.option_context('display.width', 200, 'display.max_columns', 20):
        print(pd.DataFrame(q).to_string(index=False))

    print(
        f'\nSpeed figures (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; ratio = value / target, < 1 meets a time target):'
    )
    out = []
    for r_ in rows:
        ratio = f"{r_['value'] / r_['target']:.2f}" if r_['target'] else ''
        out.append(
            {
                'figure': r_['figure'],
                'value': f"{r_['value']:,.1f} {r_['unit']}",
                'target': f"< {r_['target']:.0f} s" if r_['target'] else '',
                'ratio': ratio,
                'cpu s': f"{r_['cpu_s']:.1f}" if r_['cpu_s'] is not None else '',
                'note': r_['note'],
            }
        )
    with pd.option_context('display.width', 250, 'display.max_colwidth', 90):
        print(pd.DataFrame(out).to_string(index=False))


if __name__ == '__main__':
    main()
