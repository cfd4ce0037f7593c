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
    python benchmarks/bench_dashboard.py --n 1000 --browser /path/to/old/checkout   # + JupyterLab/Chromium redraws, old vs new
"""

import argparse, os, sys, time
import numpy as np

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
from synthbench.analysis.metrics import make_demo_table, unit_rows
from synthbench.analysis import audit as A


def table(n: int, seed: int = 0):
    df = make_demo_table(n, seed=seed)
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, 384))
    lab = rng.integers(0, 30, n)
    return df, unit_rows(centres[lab] + 0.6 * rng.normal(size=(n, 384)))


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def run(n: int):
    df, emb = table(n)
    t = time.perf_counter()
    rep = A.audit(df, embeddings=emb, projection='pca', progress=False)
    t_audit = time.perf_counter() - t
    box = {}
    first = timed(lambda: box.setdefault('d', A.dashboard(rep)))
    d = box['d']
    tab = d.children[3]
    filt = [w for w in d.children[1].children if w.description == 'round'][0]
    colour = d.children[1].children[-1]
    tab.selected_index = 0
    t_filter = timed(lambda: setattr(filt, 'value', '2'))
    tab.selected_index = 3
    filt.value = '(all)'
    t_filter_map = timed(lambda: setattr(filt, 'value', '1'))
    opts = [o for o in colour.options if o != colour.value]
    t_colour = timed(lambda: setattr(colour, 'value', 'round' if 'round' in opts else opts[0]))
    full = float('nan')
    if hasattr(A, '_tab_widgets'):  # this version: every tab rebuilt, as each change did before
        m = rep.rows['round'].astype(str).to_numpy() == '2'
        full = timed(lambda: [A._tab_widgets(rep, m, name, 'cluster', lambda *a: None) for name in A.TABS])
    redraw = max(t_filter, t_colour, t_filter_map)
    print(
        f'n={n:>6,}: audit {t_audit:5.1f} s | first show {first:5.2f} s | filter redraw {t_filter:5.2f} s (Balance tab), {t_filter_map:5.2f} s (map tab) | colour redraw {t_colour:5.2f} s | '
        f'full rebuild {full:5.2f} s | full/redraw x{full / redraw:4.1f} | target redraw <= 2 s: {"OK" if redraw <= 2 else "MISSED"} | '
        f'load average {os.getloadavg()[0]:.1f}',
        flush=True,
    )


# ---- in the browser: JupyterLab + headless Chromium, the time until the front end shows the redrawn map
BROWSER_NB = [
    "import os; os.environ['TOKENIZERS_PARALLELISM'] = 'false'\nfrom synthbench.analysis.audit import audit\nfrom synthbench.analysis.metrics import make_collapsed_table",
    "rep = audit(make_collapsed_table(430, 170), embed='tfidf', projection='pca', progress=False)\nrep",
]
_MAP = """(want) => [...document.querySelectorAll('.jp-OutputArea-output .js-plotly-plot')].some(g => g.data && g.layout && g.layout.title &&
            String(g.layout.title.text || '').startsWith('Embedding map') && g.data.some(t => t.name === want))"""


def browser_times(pythonpath: str, label: str):
    "Colour and filter redraw times of the 600-row collapsed set in JupyterLab, with synthbench from `pythonpath`."
    import json, secrets, subprocess, tempfile, urllib.request
    from pathlib import Path
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'tests'))
    from test_browser import _free_port, _run_all, ARGS

    tmp = Path(tempfile.mkdtemp())
    root = tmp / 'root'
    root.mkdir()
    cells = [dict(cell_type='code', metadata={}, execution_count=None, outputs=[], source=c) for c in BROWSER_NB]
    (root / 'b.ipynb').write_text(
        json.dumps(
            dict(
                cells=cells,
                metadata=dict(kernelspec=dict(name='python3', display_name='Python 3', language='python')),
                nbformat=4,
                nbformat_minor=5,
            )
        )
    )
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, PYTHONPATH=pythonpath, JUPYTER_CONFIG_DIR=str(tmp / 'cfg'), JUPYTER_RUNTIME_DIR=str(tmp / 'rt'))
    proc = subprocess.Popen(
        [
            sys.executable,
            '-m',
            'jupyterlab',
            '--no-browser',
            '--ip=127.0.0.1',
            f'--port={port}',
            f'--IdentityProvider.token={token}',
            f'--ServerApp.root_dir={root}',
            '--LabApp.news_url=',
            '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
            *(['--allow-root'] if os.geteuid() == 0 else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f'http://127.0.0.1:{port}/api/status?token={token}', timeout=2)
                break
            except Exception:
                time.sleep(0.5)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path='/usr/bin/chromium', headless=True, args=ARGS)
            page = b.new_page(viewport={'width': 1400, 'height': 2400})
            page.goto(f'http://127.0.0.1:{port}/lab/tree/b.ipynb?token={token}', timeout=60_000)
            page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)
            t = time.perf_counter()
            _run_all(page)
            page.wait_for_selector('.jp-OutputArea-output .js-plotly-plot .main-svg', timeout=300_000)
            first = time.perf_counter() - t
            page.locator('.jp-OutputArea-output .widget-tab .lm-TabBar-tab', has_text='Embedding map').click()
            page.wait_for_function(
                f'() => ({_MAP})("round 0") || ({_MAP})("cluster 0") || [...document.querySelectorAll(".js-plotly-plot")].some(g => g.data && g.data.some(t => String(t.name).startsWith("cluster 0")))',
                timeout=120_000,
            )

            def sel(label_, value):
                page.locator('.jp-OutputArea-output .widget-dropdown', has=page.locator(f'label:text-is("{label_}")')).locator(
                    'select'
                ).select_option(value)

            t = time.perf_counter()
            sel('colour by', 'round')
            page.wait_for_function(f'() => ({_MAP})("round 2")', timeout=120_000)
            colour = time.perf_counter() - t
            tabs = page.locator('.jp-OutputArea-output .widget-tab .lm-TabBar-tab.lm-mod-current').inner_text().strip()
            t = time.perf_counter()
            sel('round', '1')
            page.wait_for_function(f'() => ({_MAP})("round 1") && !({_MAP})("round 2")', timeout=120_000)
            filt = time.perf_counter() - t
            b.close()
        print(
            f'browser, 600 rows, {label}: first show {first:5.1f} s | colour change {colour:5.1f} s (tab shown after: {tabs}) | filter change {filt:5.1f} s',
            flush=True,
        )
        return colour, filt
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, action='append', help='rows (repeatable; default 1000 and 10000)')
    ap.add_argument(
        '--browser',
        metavar='OLD_PYTHONPATH',
        help='also time redraws in JupyterLab + Chromium (600 rows), this checkout and the synthbench at OLD_PYTHONPATH side by side',
    )
    a = ap.parse_args()
    print(
        f'synthbench from {os.path.dirname(A.__file__)}; cores: {os.cpu_count()}; python {sys.version.split()[0]} (shared machine: figures vary with load)'
    )
    t = time.perf_counter()
    A.dashboard(A.audit(*[table(200)[0]], embed='tfidf', projection='pca', progress=False))
    print(f'warm-up (imports: ipywidgets, plotly FigureWidget): {time.perf_counter() - t:.1f} s')
    for n in a.n or [1000, 10_000]:
        run(n)
    if a.browser:
        here = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
        new = browser_times(here, 'this checkout')
        old = browser_times(a.browser, f'old ({a.browser})')
        print(f'browser ratio old/new: colour change x{old[0] / new[0]:.1f}, filter change x{old[1] / new[1]:.1f}')
