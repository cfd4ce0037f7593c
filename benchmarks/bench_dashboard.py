"""Dashboard speed: first show and redraw after a filter or "colour by" change, at 1k and 10k rows.

The audit itself is not timed (embeddings are precomputed random clustered vectors, PCA map). Measured in one run:
- first show: `dashboard(report)` (builds the visible tab),
- filter change: the `round` dropdown set to one round while the Balance tab is shown,
- colour change: "colour by" changed while the map tab is shown,
- full rebuild: every tab rebuilt for the filtered rows (what each change cost before tabs were drawn lazily),
and the ratio full rebuild / redraw. Target: a redraw <= 2 s at 10k rows. Python-side time only (widget state
built and serialised for the front end); the browser's drawing is not included.

    python benchmarks/bench_dashboard.py              # 1k and 10k
    python benchmarks/bench_dashboard.py --n 1000     # one size

It also runs against an older synthbench (the generic part: dashboard(), dropdown changes) to compare before/after:
    cd /some/other/checkout && python /path/to/bench_dashboard.py   # imports whichever synthbench is on the path
"""
import argparse, os, sys, time
import numpy as np
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
from synthbench.metrics import make_demo_table, unit_rows
from synthbench import audit as A

def table(n:int, seed:int=0):
    df = make_demo_table(n, seed=seed)
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, 384)); lab = rng.integers(0, 30, n)
    return df, unit_rows(centres[lab] + 0.6 * rng.normal(size=(n, 384)))

def timed(f):
    t = time.perf_counter(); f(); return time.perf_counter() - t

def run(n:int):
    df, emb = table(n)
    t = time.perf_counter(); rep = A.audit(df, embeddings=emb, projection='pca', progress=False); t_audit = time.perf_counter() - t
    box = {}
    first = timed(lambda: box.setdefault('d', A.dashboard(rep)))
    d = box['d']; tab = d.children[3]; filt = [w for w in d.children[1].children if w.description == 'round'][0]; colour = d.children[1].children[-1]
    tab.selected_index = 0
    t_filter = timed(lambda: setattr(filt, 'value', '2'))
    tab.selected_index = 3; filt.value = '(all)'
    t_filter_map = timed(lambda: setattr(filt, 'value', '1'))
    opts = [o for o in colour.options if o != colour.value]
    t_colour = timed(lambda: setattr(colour, 'value', 'round' if 'round' in opts else opts[0]))
    full = float('nan')
    if hasattr(A, '_tab_widgets'):   # this version: every tab rebuilt, as each change did before
        m = rep.rows['round'].astype(str).to_numpy() == '2'
        full = timed(lambda: [A._tab_widgets(rep, m, name, 'cluster', lambda *a: None) for name in A.TABS])
    redraw = max(t_filter, t_colour, t_filter_map)
    print(f'n={n:>6,}: audit {t_audit:5.1f} s | first show {first:5.2f} s | filter redraw {t_filter:5.2f} s (Balance tab), {t_filter_map:5.2f} s (map tab) | colour redraw {t_colour:5.2f} s | '
          f'full rebuild {full:5.2f} s | full/redraw x{full / redraw:4.1f} | target redraw <= 2 s: {"OK" if redraw <= 2 else "MISSED"} | '
          f'load average {os.getloadavg()[0]:.1f}', flush=True)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, action='append', help='rows (repeatable; default 1000 and 10000)')
    a = ap.parse_args()
    print(f'synthbench from {os.path.dirname(A.__file__)}; cores: {os.cpu_count()}; python {sys.version.split()[0]} (shared machine: figures vary with load)')
    t = time.perf_counter(); A.dashboard(A.audit(*[table(200)[0]], embed='tfidf', projection='pca', progress=False))
    print(f'warm-up (imports: ipywidgets, plotly FigureWidget): {time.perf_counter() - t:.1f} s')
    for n in a.n or [1000, 10_000]: run(n)
