"""Stored notebook outputs are current: execute each notebook the way `nbdev-test` does (execnb, in the notebook's folder,
cells flagged `notest`/`slow` left out, a fresh LLM/embedding cache per notebook), then compare every code cell's outputs
with the committed ones after normalising what changes from run to run (times, durations, dates, paths, temp dirs,
memory addresses, ports, uuids, progress bars, float noise).

    python tools/check_outputs.py [NB ...]           # check (default: the notebooks listed in OUTPUT_NOTEBOOKS); exit 1 if stale
    python tools/check_outputs.py --update [NB ...]  # execute and store the outputs (compactly), then `nbdev-clean` keeps them

A failing test cell fails the check too, so for these notebooks it stands in for `nbdev-test`."""

from __future__ import annotations
import argparse, base64, difflib, json, os, re, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
# notebooks whose outputs are committed (and checked in CI); the others keep no outputs
OUTPUT_NOTEBOOKS = [
    '00_core',
    '05_stage',
    '10_llm',
    '11_cost',
    '12_local',
    '13_llmcache',
    '14_batch',
    '15_embed',
    '32_dedup',
    '60_review',
    '40_metrics',
    '41_embedmap',
    '50_tstr',
    '51_evalgen',
    '23_prefs',
    '37_finetune',
    '53_evaluate',
    '54_datawork',
    '34_pii',
    '36_hub',
    'index',
    '42_audit',
    '61_promptlab',
    '95_testing',
    '20_generate',
    '21_evol',
    '22_augment',
    '31_judge',
    '01_spec',
    '02_formats',
    '06_workbench',
    '30_validate',
    '35_export',
    'tutorials/task_api',
    'tutorials/support_tickets',
    'tutorials/grounded_policy',
    'tutorials/audit_existing',
    'tutorials/ablation',
    '07_rayengine',
    '90_cli',
]
_BAR = re.compile(r'\r|\d+%\|.*\||\bit/s\]')
MAX_TEXT = 20_000  # characters of one text output kept in the notebook (longer ones are cut, with a note)


def nb_path(name: str) -> Path:
    "A notebook named as in OUTPUT_NOTEBOOKS (`32_dedup`, `tutorials/task_api`: relative to nbs/, no suffix) or by its path."
    return Path(name).resolve() if name.endswith('.ipynb') else NBS / f'{name}.ipynb'


def skip_names(names=None) -> list[str]:
    "File names (regex-escaped, no suffix) for `nbdev-test --skip-file-re`, which matches a notebook's file name, not its folder."
    names = OUTPUT_NOTEBOOKS if names is None else names
    res = [Path(n).name for n in names]
    for b in res:  # a name in two folders would make nbdev-test skip a notebook nobody checks
        found = sorted(str(p.relative_to(NBS)) for p in NBS.rglob(f'{b}.ipynb') if '.ipynb_checkpoints' not in p.parts)
        if len(found) > 1:
            raise SystemExit(f'check_outputs: {found} share the file name {b}.ipynb; nbdev-test would skip all of them: rename one')
    return [re.escape(b) for b in res]


# --- executing -------------------------------------------------------------------------------------------------------


def _execute_here(nb_path: Path, out_json: Path, timeout: int):
    "Run in a child process: execute `nb_path` like nbdev-test and write {cell id: outputs} (and an error) to `out_json`."
    from nbdev.config import get_config
    from nbdev.process import NBProcessor
    from nbdev.test import _skip_cell
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory

    os.environ['IN_TEST'] = '1'
    nb = NBProcessor(nb_path, rm_directives=False, process=True).nb
    try:
        flags = get_config(nb_path.parent).tst_flags.split()
    except Exception:
        flags = ['notest', 'slow']  # a notebook outside an nbdev project
    skip = _skip_cell(nb, flags)
    res = {'outputs': {}, 'skipped': [], 'error': None}
    k = CaptureShell(nb_path)
    try:
        with working_directory(nb_path.parent):
            k.run_all(nb, exc_stop=True, preproc=skip, cell_timeout=timeout)
    except Exception as e:
        res['error'] = (k.prettytb(fname=nb_path) if hasattr(k, 'prettytb') else '') or f'{type(e).__name__}: {e}'
    for c in nb.cells:
        if c.cell_type != 'code':
            continue
        if skip(c):
            res['skipped'].append(c.id)
            continue
        res['outputs'][c.id] = [_plain(o) for o in (c.get('outputs') or [])]
    out_json.write_text(json.dumps(res), encoding='utf-8')


def _plain(o):
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    return o


def execute(nb_path: Path, timeout: int = 600) -> dict:
    "Execute a notebook in its own process (fresh caches); {'outputs': {cell id: [outputs]}, 'skipped': [...], 'error': str|None}."
    with tempfile.TemporaryDirectory(prefix='sb-outputs-') as d:
        out = Path(d) / 'res.json'
        env = {
            **os.environ,
            'SYNTHBENCH_CACHE_DIR': str(Path(d) / 'cache'),
            'PYTHONPATH': f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            'TQDM_DISABLE': '1',
            'HF_HUB_OFFLINE': '1',
            'TRANSFORMERS_OFFLINE': '1',
            'TOKENIZERS_PARALLELISM': 'false',
        }
        p = subprocess.run(
            [sys.executable, __file__, '--_child', str(nb_path), str(out), str(timeout)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout * 3,
        )
        if not out.exists():
            return {'outputs': {}, 'skipped': [], 'error': f'the executor died (exit {p.returncode}): {p.stderr[-2000:]}'}
        return json.loads(out.read_text(encoding='utf-8'))


# --- storing compactly -----------------------------------------------------------------------------------------------


def _round_floats(o, sig: int = 4):
    if isinstance(o, float):
        return float(f'{o:.{sig}g}')
    if isinstance(o, list):
        return [_round_floats(v, sig) for v in o]
    if isinstance(o, dict):
        return {k: _round_floats(v, sig) for k, v in o.items()}
    return o


def _plotly_text(fig: dict) -> str:
    data = fig.get('data') or []
    kinds = sorted({t.get('type', 'scatter') for t in data})
    title = (fig.get('layout') or {}).get('title') or {}
    title = title.get('text') if isinstance(title, dict) else title
    return f"plotly figure: {len(data)} trace(s) ({', '.join(kinds)})" + (f", title {title!r}" if title else '')


def _is_plotly_loader(d: dict) -> bool:
    h = d.get('text/html', '')
    h = ''.join(h) if isinstance(h, list) else h
    return 'application/vnd.plotly.v1+json' not in d and ('var Plotly=' in h or 'require.undef("plotly")' in h or "define('plotly'" in h)


def compact(outputs: list) -> list:
    "Outputs as committed: plotly figures as their JSON (floats to 4 digits, no inlined plotly.js) plus a one-line text; widgets as their text; long text cut."
    res = []
    for o in outputs:
        o = json.loads(json.dumps(o))
        o.pop('execution_count', None) if o.get('output_type') != 'execute_result' else o.update(execution_count=None)
        d = o.get('data')
        if d is not None and (not d or _is_plotly_loader(d)):
            continue  # empty results; plotly.js itself (4 MB), injected before the first figure
        if d:
            if 'application/vnd.plotly.v1+json' in d:
                fig = _round_floats(d['application/vnd.plotly.v1+json'])
                fig.get('layout', {}).pop('template', None)  # the theme: ~10 kB per figure, the same in every one
                d.clear()
                d.update({'application/vnd.plotly.v1+json': fig, 'text/plain': _plotly_text(fig)})
            if 'application/vnd.jupyter.widget-view+json' in d:
                for k in list(d):
                    if k != 'text/plain':
                        d.pop(k)
                d.setdefault('text/plain', 'interactive widget (run the notebook to use it)')
            for k, v in list(d.items()):
                if k.startswith('text/'):
                    v = ''.join(v) if isinstance(v, list) else v
                    if len(v) > MAX_TEXT:
                        v = v[:MAX_TEXT] + f'\n... ({len(v) - MAX_TEXT} more characters: run the notebook to see them)'
                    d[k] = v
            o['metadata'] = {}
        if 'text' in o:
            t = ''.join(o['text']) if isinstance(o['text'], list) else o['text']
            t = '\n'.join(l for l in t.split('\n') if not _BAR.search(l))  # progress bars: redrawn lines, not results
            if not t.strip():
                continue
            o['text'] = t if len(t) <= MAX_TEXT else t[:MAX_TEXT] + '\n...'
        for k, v in (d or {}).items():
            if k.startswith('text/'):
                d[k] = v.replace(str(ROOT) + '/', '')
        if 'text' in o:
            o['text'] = o['text'].replace(str(ROOT) + '/', '')  # repo paths relative, as a reader's clone has them
        res.append(o)
    return res


# --- static images ---------------------------------------------------------------------------------------------------
# A code host (GitHub) draws no plotly JSON, so every stored figure also carries a PNG of itself, drawn by plotly.js (the copy
# shipped in the plotly package) in headless chromium. The PNG is not compared (fonts differ between machines); the figure's
# JSON is, and a stored figure without its PNG is a problem.
CHROMIUM = os.environ.get('SYNTHBENCH_CHROMIUM', '/usr/bin/chromium')


class StaticImages:
    "Render plotly figure JSON to PNG (base64) in one headless chromium page, started on first use."

    def __init__(self):
        self.page = None

    def start(self):
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise SystemExit(
                'check_outputs --update: playwright is not installed (pip install -e ".[dev]"); it draws the static figures'
            ) from None
        if not Path(CHROMIUM).exists():
            raise SystemExit(
                f'check_outputs --update: no browser at {CHROMIUM} (apt-get install chromium, or set SYNTHBENCH_CHROMIUM); it draws the static figures'
            )
        import plotly

        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage']
        )
        self.page = self._browser.new_page()
        self.page.set_content('<!doctype html><html><body style="margin:0"><div id="fig"></div></body></html>')
        self.page.add_script_tag(content=(Path(plotly.__file__).parent / 'package_data' / 'plotly.min.js').read_text(encoding='utf-8'))

    def png(self, fig: dict) -> str:
        if self.page is None:
            self.start()
        lay = fig.get('layout') or {}
        w, h = int(lay.get('width') or 700), int(lay.get('height') or 450)
        url = self.page.evaluate(
            """async ([fig, w, h]) => {
            const gd = document.getElementById('fig');
            await Plotly.react(gd, fig.data || [], Object.assign({}, fig.layout || {}, {width: w, height: h}), {staticPlot: true});
            return await Plotly.toImage(gd, {format: 'png', width: w, height: h, scale: 1}); }""",
            [fig, w, h],
        )
        return url.split(',', 1)[1]

    def close(self):
        if self.page is not None:
            self._browser.close()
            self._pw.stop()
            self.page = None


def add_images(outputs: list, images: StaticImages) -> list:
    "Give each stored plotly figure its PNG (`image/png`), drawn from the stored (compact) JSON."
    for o in outputs:
        d = o.get('data') or {}
        if 'application/vnd.plotly.v1+json' in d:
            d['image/png'] = images.png(d['application/vnd.plotly.v1+json'])
            o['data'] = {k: d[k] for k in ('application/vnd.plotly.v1+json', 'image/png', 'text/plain') if k in d}
    return outputs


def missing_images(outputs: list) -> int:
    "Stored plotly figures without their static PNG."
    return sum(1 for o in outputs if 'application/vnd.plotly.v1+json' in (o.get('data') or {}) and 'image/png' not in o['data'])


# --- comparing -------------------------------------------------------------------------------------------------------

_SUBS = [
    (re.compile(r'\x1b\[[0-9;]*[A-Za-z]'), ''),  # ANSI colours
    (re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'), '<uuid>'),
    (re.compile(r'\b0x[0-9a-fA-F]{6,}\b'), '0x<addr>'),
    (re.compile(r'(/tmp|/var/folders|/private/var)/[^\s\'"<>),\]]*'), '<tmp>'),
    (re.compile(r'\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d{4}|Z)?'), '<datetime>'),
    (re.compile(r'\b\d\d:\d\d:\d\d\b'), '<time>'),
    (re.compile(r'(127\.0\.0\.1|localhost):\d+'), r'\1:<port>'),
    (re.compile(r'\bpid[ =:]*\d+', re.I), 'pid <n>'),
    (re.compile(r'\b\d+(\.\d+)?\s?(ns|µs|us|ms|s|sec|secs|seconds|min|minutes|h)\b'), '<dur>'),
    (re.compile(r'\b\d+(\.\d+)?\s?(KB|MB|GB|KiB|MiB|GiB|kB)\b'), '<mem>'),
    (re.compile(r'\b\d+(\.\d+)?\s?(it/s|s/it|req/s|tok/s|tokens/s)\b'), '<rate>'),
    (re.compile(r'-?\d+\.\d{4,}(e-?\d+)?'), lambda m: f'{float(m.group(0)):.3g}'),  # float noise past 3 digits
]


def normalise(text: str) -> str:
    text = text.replace(str(ROOT), '<root>').replace(str(Path.home()), '<home>')
    for rx, rep in _SUBS:
        text = rx.sub(rep, text)
    lines = [l for l in text.split('\n') if not re.search(r'\d+%\|.*\||\bit/s\]|\r', l)]  # progress bars
    return '\n'.join(l.rstrip() for l in lines).strip()


def comparable(outputs: list) -> list[str]:
    "Each output as normalised text: stream text, text/plain (or text/html, text/markdown) of results; images and figures by type only."
    res = []
    for o in compact(outputs):
        t = o.get('output_type')
        if t == 'stream':
            if o.get('name') == 'stderr' and re.search(r'\d+%\||it/s', o['text']):
                continue
            s = normalise(o['text'])
            if s:
                res.append(f"[{o.get('name')}] {s}")
        elif t == 'error':
            res.append(f"[error] {o.get('ename')}: {normalise(o.get('evalue', ''))}")
        else:
            d = o.get('data', {})
            if 'application/vnd.plotly.v1+json' in d:
                res.append('[plotly] ' + d['text/plain'])
                continue
            for k in ('text/markdown', 'text/html', 'text/plain'):
                if k in d:
                    res.append(f'[{k}] ' + normalise(d[k]))
                    break
            res += [f'[{k}]' for k in d if k.startswith('image/')]
    return res


def _nb_json(p: Path) -> dict:
    return json.loads(p.read_text(encoding='utf-8'))


def check(nb_path: Path, res: dict) -> list[str]:
    "Problems with one notebook's stored outputs: 'NB cell N (first line): stale' with a short diff, or the error it raised."
    nb, probs = _nb_json(nb_path), []
    name = nb_path.relative_to(ROOT) if nb_path.is_relative_to(ROOT) else nb_path
    if res['error']:
        probs.append(f'{name}: executing it failed:\n{res["error"][-3000:]}')
    no_png = sum(missing_images(c.get('outputs') or []) for c in nb['cells'] if c['cell_type'] == 'code')
    if no_png:
        probs.append(
            f'{name}: {no_png} stored figure(s) without a static image (a code host cannot draw them); re-run `python tools/check_outputs.py --update {name}`'
        )
    for i, c in enumerate(nb['cells']):
        if c['cell_type'] != 'code' or c.get('id') in res['skipped'] or c.get('id') not in res['outputs']:
            continue
        old, new = comparable(c.get('outputs') or []), comparable(res['outputs'][c['id']])
        if old == new:
            continue
        first = next((l for l in ''.join(c['source']).split('\n') if l.strip() and not l.startswith('#|')), '')[:70]
        diff = list(difflib.unified_diff('\n'.join(old).split('\n'), '\n'.join(new).split('\n'), 'committed', 'now', n=1, lineterm=''))
        cut = diff[:14] + ([f'... ({len(diff) - 14} more diff lines)'] if len(diff) > 14 else [])
        probs.append(
            f'{name} cell {i} ({first}): stored output is stale; re-run `python tools/check_outputs.py --update {name}`\n  '
            + '\n  '.join(l[:200] for l in cut)
        )
    return probs


def update(nb_path: Path, res: dict, images: StaticImages):
    "Store the executed outputs (compactly, figures with a static PNG) in the notebook, the rest of the file untouched."
    if res['error']:
        raise SystemExit(f'{nb_path}: not updated, executing it failed:\n{res["error"][-3000:]}')
    nb = _nb_json(nb_path)
    for c in nb['cells']:
        if c['cell_type'] == 'code' and c.get('id') in res['outputs']:
            c['outputs'] = add_images(compact(res['outputs'][c['id']]), images)
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
    subprocess.run(['nbdev-clean', '--fname', str(nb_path)], check=True, cwd=ROOT)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('notebooks', nargs='*', help=f'notebooks (default: {", ".join(OUTPUT_NOTEBOOKS)})')
    ap.add_argument('--update', action='store_true', help='store the new outputs instead of checking them')
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--timeout', type=int, default=600, help='seconds per cell')
    a = ap.parse_args(argv)
    nbs = [nb_path(n) for n in (a.notebooks or OUTPUT_NOTEBOOKS)]
    for p in nbs:
        if not p.is_file():
            print(f'check_outputs: no notebook {p}', file=sys.stderr)
            return 2
    t0, probs = time.time(), []

    def one(p):
        t = time.time()
        r = execute(p, a.timeout)
        return p, r, time.time() - t

    images = StaticImages()  # used by --update only, in this thread
    with ThreadPoolExecutor(a.workers) as ex:
        for p, r, dt in ex.map(one, nbs):
            if a.update:
                update(p, r, images)
                print(f'{p.name}: outputs stored ({dt:.0f}s)')
            else:
                pr = check(p, r)
                probs += pr
                print(f'{p.name}: {"STALE" if pr else "current"} ({dt:.0f}s)')
    images.close()
    for pr in probs:
        print(pr, file=sys.stderr)
    print(f'check_outputs: {len(nbs)} notebook(s), {len(probs)} problem(s), {time.time() - t0:.0f}s')
    return 1 if probs else 0


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--_child':
        _execute_here(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        sys.exit(0)
    sys.exit(main())
