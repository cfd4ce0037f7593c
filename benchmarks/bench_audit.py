"""Audit speed: full `audit` (UMAP included) of 10k embedded examples; optionally 100k.

Targets: 10k under 60 s on 2 cores after warm-up; 100k under 5 minutes. Embeddings are precomputed
(random unit vectors with planted cluster structure, 384-d like all-MiniLM-L6-v2) so the figure is the
audit itself, not the embedding model. UMAP is warmed up (numba JIT) on a small table first, and the
warm-up time is printed separately.

    python benchmarks/bench_audit.py            # 10k
    python benchmarks/bench_audit.py --100k     # also 100k (several minutes)
"""

import argparse, os, sys, time, tempfile
import numpy as np

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
from synthbench.analysis.metrics import make_demo_table, unit_rows
from synthbench.analysis.audit import audit


def table(n: int, seed: int = 0):
    "A demo table of `n` rows (planted collapse in round 2) and 384-d clustered unit embeddings."
    df = make_demo_table(n, seed=seed)
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, 384))
    lab = rng.integers(0, 30, n)
    emb = unit_rows(centres[lab] + 0.6 * rng.normal(size=(n, 384)))
    return df, emb


def run(n: int, html: bool = True):
    df, emb = table(n)
    t0, c0 = time.time(), time.process_time()
    rep = audit(df, embeddings=emb, progress=False)
    t_audit = time.time() - t0
    c_audit = time.process_time() - c0
    t1 = time.time()
    if html:
        with tempfile.TemporaryDirectory() as d:
            rep.to_html(os.path.join(d, 'a.html'))
    t_html = time.time() - t1
    print(
        f'n={n:>7,}: audit {t_audit:6.1f} s wall, {c_audit:6.1f} s CPU (map: {rep.map.method}), to_html {t_html:5.1f} s; '
        f'load average {os.getloadavg()[0]:.1f}; steps (wall s): {rep.metrics["timings_s"]}',
        flush=True,
    )
    return t_audit


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--100k', dest='big', action='store_true', help='also audit 100k rows (target < 300 s)')
    ap.add_argument('--n', type=int, default=10_000, help='rows of the main case (default 10000)')
    a = ap.parse_args()
    print(f'cores: {os.cpu_count()}  python {sys.version.split()[0]}')
    from synthbench.analysis.embedmap import project_2d

    t = time.time()
    run(300, html=False)
    project_2d(table(4500)[1], progress=False)  # > 4096 rows: UMAP's nearest-neighbour descent path (pynndescent JIT) too
    print(f'warm-up (imports + UMAP/pynndescent numba JIT): {time.time() - t:.1f} s')
    t10 = run(a.n)
    print(f'RESULT {a.n:,} rows: {t10:.1f} s  (target < 60 s: {"OK" if t10 < 60 else "MISSED"}; ratio to target {t10 / 60:.2f})')
    if a.big:
        t100 = run(100_000, html=False)
        print(
            f'RESULT 100,000 rows: {t100:.1f} s  (target < 300 s: {"OK" if t100 < 300 else "MISSED"}; ratio to target {t100 / 300:.2f}; x{t100 / t10:.1f} the 10k time)'
        )
