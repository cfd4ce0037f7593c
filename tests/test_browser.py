"""The audit dashboard and HTML report, rendered by a real browser (headless Debian chromium via playwright).

JupyterLab runs on loopback with a token in a temporary root; the test opens a notebook that builds the
dashboard, runs it from JupyterLab's Run menu, and checks that the ipywidgets tabs and plotly plots
rendered, that a click on a bar lists examples, and that generated HTML stayed text. Screenshots go to
the test's tmp dir."""

import json, os, secrets, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]
CHROMIUM = '/usr/bin/chromium'
ARGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-dev-shm-usage',
]
EVIL = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def _need_browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(
            f'NO BROWSER: {CHROMIUM} is missing and could not be installed (apt-get install -y chromium); the dashboard was NOT checked in a browser'
        )
    try:
        import playwright.sync_api  # noqa
    except ImportError:
        pytest.skip('NO BROWSER DRIVER: the python package playwright is not installed; the dashboard was NOT checked in a browser')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


NB_CODE = [
    "import os; os.environ['TOKENIZERS_PARALLELISM'] = 'false'\n"
    "from synthbench.analysis.audit import audit\nfrom synthbench.analysis.metrics import make_demo_table\nfrom synthbench.core import make_table, concat_tables",
    "df = make_demo_table(40)\n"
    f"evil = make_table([{{'messages': [{{'role': 'user', 'content': {EVIL!r}}}, {{'role': 'assistant', 'content': 'ok ' + {EVIL!r} + ' and more' * 300}}], 'category': 'billing', 'round': 1, 'source': 'generated'}}])\n"
    "df = concat_tables(df, evil)\n"
    "rep = audit(df, embed='tfidf', projection='pca', progress=False)\n"
    "rep",
]


def _notebook(path: Path):
    cells = [dict(cell_type='code', metadata={}, execution_count=None, outputs=[], source=c) for c in NB_CODE]
    nb = dict(
        cells=cells,
        metadata=dict(kernelspec=dict(name='python3', display_name='Python 3', language='python')),
        nbformat=4,
        nbformat_minor=5,
    )
    path.write_text(json.dumps(nb))


@pytest.fixture
def lab(tmp_path):
    _need_browser()
    root = tmp_path / 'root'
    root.mkdir()
    _notebook(root / 'dash.ipynb')
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        HF_HUB_OFFLINE='1',
        TRANSFORMERS_OFFLINE='1',
        JUPYTER_CONFIG_DIR=str(tmp_path / 'cfg'),
        JUPYTER_RUNTIME_DIR=str(tmp_path / 'rt'),
    )
    log = open(tmp_path / 'lab.log', 'w')
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
            '--ServerApp.disable_check_xsrf=True',
            '--LabApp.news_url=',
            '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
            *(['--allow-root'] if os.geteuid() == 0 else []),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f'http://127.0.0.1:{port}'
    for _ in range(120):
        try:
            urllib.request.urlopen(f'{url}/api/status?token={token}', timeout=2)
            break
        except Exception:
            if proc.poll() is not None:
                pytest.fail(f'jupyter lab exited: {(tmp_path / "lab.log").read_text()[-2000:]}')
            time.sleep(0.5)
    else:
        pytest.fail('jupyter lab did not start in 60 s')
    yield url, token, tmp_path
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _browser(p):
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


def _accept_dialogs(page):
    "Accept JupyterLab dialogs (e.g. 'Select Kernel', which can pop up while the session starts)."
    for _ in range(3):
        btn = page.locator('.jp-Dialog .jp-Dialog-button.jp-mod-accept')
        if not btn.count():
            return
        btn.first.click()
        page.wait_for_timeout(500)


def _run_all(page):
    "Run > Run All Cells from JupyterLab's menu; retried once if a dialog swallowed the first try."
    for attempt in range(2):
        _accept_dialogs(page)
        page.click('.lm-MenuBar-item:has-text("Run")')
        page.click('.lm-Menu-item[data-command="runmenu:run-all"]')
        page.wait_for_timeout(1500)
        _accept_dialogs(page)
        try:
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-InputPrompt')].some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))", timeout=20_000
            )
            return
        except Exception:
            if attempt:
                raise


_NB_STATE = """() => { const ps = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim());
  return {prompts: ps, busy: ps.some(t => t.includes('*')), blank: ps.filter(t => !/\\d/.test(t)).length,
          error: document.querySelectorAll('[data-mime-type="application/vnd.jupyter.error"]').length,
          errtext: [...document.querySelectorAll('[data-mime-type="application/vnd.jupyter.error"]')].map(e => e.innerText.slice(-600)).join(' | ')}; }"""


def _run_until(page, selector: str, timeout_s: float = 300):
    """Run all cells and wait until `selector` shows in an output. JupyterLab can swap the kernel while the session
    starts (kernel started/shut down twice in lab.log), and a Run All issued then executes only some cells (cell 2 ran,
    cell 1 never did: NameError). When the kernel settles with a cell not run or an error, Run All is issued again (twice
    at most); a genuine error therefore still fails, with its text."""
    deadline, st = time.time() + timeout_s, {}
    for attempt in range(3):
        _run_all(page)
        started = time.time()
        while time.time() < deadline:
            loc = page.locator(f'.jp-OutputArea-output {selector}')
            if loc.count():
                loc.first.wait_for(state='visible', timeout=60_000)
                return
            st = page.evaluate(_NB_STATE)
            if time.time() - started > 5 and not st['busy'] and (st['blank'] or st['error']):
                break
            page.wait_for_timeout(1000)
        else:
            break
    pytest.fail(
        f'{selector!r} did not show after {attempt + 1} Run All(s) in {timeout_s:.0f} s; cell prompts {st.get("prompts")}, '
        f'errors: {st.get("errtext") or "none"}'
    )


def test_dashboard_renders_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    url, token, tmp = lab
    with sync_playwright() as p:
        b = _browser(p)
        page = b.new_page(viewport={'width': 1400, 'height': 2600})
        try:
            page.goto(f'{url}/lab/tree/dash.ipynb?token={token}', timeout=60_000)
            page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=60_000)
            page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)
            _run_until(page, '.widget-tab')
            page.wait_for_selector('.jp-OutputArea-output .js-plotly-plot .main-svg', timeout=60_000)
            page.wait_for_timeout(1500)
            assert page.locator('.jp-OutputArea-output .widget-tab .lm-TabBar-tab').count() == 6
            titles = page.locator('.jp-OutputArea-output .widget-tab .lm-TabBar-tab').all_inner_texts()
            assert [t.strip() for t in titles] == ['Balance', 'Length', 'Vocabulary', 'Embedding map', 'Bias', 'Real vs synthetic']
            assert page.locator('.jp-OutputArea-output .js-plotly-plot').count() >= 1
            assert page.locator('[data-mime-type="application/vnd.jupyter.error"]').count() == 0
            page.screenshot(path=str(tmp / 'dashboard.png'), full_page=True)
            # click the first bar of the balance plot: the examples behind it appear under the tabs
            page.locator('.jp-OutputArea-output .js-plotly-plot .bars .point path').first.click(force=True)
            page.wait_for_selector('.synthbench-picked .synthbench-examples', timeout=30_000)
            assert '<script>window.__pwned=2</script>' in page.inner_text('.synthbench-picked') or 'example(s)' in page.inner_text(
                '.synthbench-picked'
            )
            # the Length tab lists the (very long) generated example as an outlier, its HTML shown as text
            page.locator('.jp-OutputArea-output .widget-tab .lm-TabBar-tab', has_text='Length').click()
            page.wait_for_function(
                "() => document.querySelector('.jp-OutputArea-output .widget-tab').innerText.includes('__pwned=2')", timeout=60_000
            )  # drawn when shown
            assert '<script>window.__pwned=2</script>' in page.locator('.jp-OutputArea-output .widget-tab').inner_text()
            # the map tab draws its scatter
            page.locator('.jp-OutputArea-output .widget-tab .lm-TabBar-tab', has_text='Embedding map').click()
            page.locator('.jp-OutputArea-output .js-plotly-plot .scatterlayer .point >> visible=true').first.wait_for(timeout=30_000)
            assert 'Embedding map' in page.locator('.jp-OutputArea-output .js-plotly-plot >> visible=true').first.inner_text()
            page.wait_for_timeout(800)
            page.screenshot(path=str(tmp / 'dashboard_map.png'), full_page=True)
            assert page.evaluate('window.__pwned') is None, 'generated HTML ran in the page'
            assert page.locator('[data-mime-type="application/vnd.jupyter.error"]').count() == 0
        finally:
            page.screenshot(path=str(tmp / 'dashboard_final.png'), full_page=True)
            b.close()


def test_html_report_renders_as_file(tmp_path):
    _need_browser()
    from playwright.sync_api import sync_playwright
    from synthbench.analysis.audit import audit
    from synthbench.analysis.metrics import make_demo_table
    from synthbench.core import make_table, concat_tables

    evil = make_table(
        [
            {
                'messages': [{'role': 'user', 'content': EVIL}, {'role': 'assistant', 'content': 'ok ' + EVIL + ' and more' * 300}],
                'category': 'billing',
                'round': 1,
            }
        ]
    )
    df = concat_tables(make_demo_table(60), evil)
    rep = audit(df, embed='tfidf', projection='pca', progress=False)
    path = tmp_path / 'audit.html'
    rep.to_html(path)
    with sync_playwright() as p:
        b = _browser(p)
        page = b.new_page(viewport={'width': 1300, 'height': 900})
        errors = []
        page.on('pageerror', lambda e: errors.append(str(e)))
        try:
            page.goto(path.as_uri(), timeout=60_000)
            page.wait_for_selector('.js-plotly-plot .main-svg', timeout=60_000)
            n_plots = page.locator('.js-plotly-plot').count()
            assert n_plots == rep_to_html_count(rep), n_plots
            assert page.locator('.plot-container').count() == n_plots
            assert page.evaluate('window.__pwned') is None, 'generated HTML ran in the report'
            assert '<script>window.__pwned=2</script>' in page.inner_text('#length')  # the long example is listed as an outlier, as text
            assert not errors, errors
            page.screenshot(path=str(tmp_path / 'report.png'), full_page=True)
        finally:
            b.close()


def rep_to_html_count(rep) -> int:
    from synthbench.analysis.audit import report_sections

    return sum(not isinstance(it, str) for _, items in report_sections(rep) for it in items)


# ---- collapse, copies and the lazy dashboard, seen in the browser
COLLAPSED_CODE = [
    "import os; os.environ['TOKENIZERS_PARALLELISM'] = 'false'\n"
    "from synthbench.analysis.audit import audit\nfrom synthbench.analysis.metrics import make_collapsed_table",
    "rep = audit(make_collapsed_table(430, 170), embed='tfidf', projection='pca', progress=False)\nrep",
]

_MAP_DATA = """() => { const gd = [...document.querySelectorAll('.jp-OutputArea-output .js-plotly-plot')].find(g => g.offsetParent !== null && g.data && g.data.some(t => t.type === 'contour'));
  if (!gd) return null;
  const arr = v => (v && typeof v === 'object' && 'length' in v) ? Array.from(v) : [v];
  const pts = gd.data.filter(t => t.type === 'scatter' || t.type === 'scattergl');
  return {names: pts.map(t => t.name), sizes: pts.map(t => Math.max(...arr(t.marker.size))),
          markers: pts.map(t => t.x.length), copies: pts.flatMap(t => (t.hovertext || []).filter(h => h.includes(' copies')).map(h => h.match(/×(\\d+) copies/)[1] | 0)),
          density: gd.data.filter(t => t.type === 'contour').map(t => Math.max(...Array.from(t.z).flatMap(r => Array.from(r))))}; }"""


def _open(page, url, token, name):
    page.goto(f'{url}/lab/tree/{name}?token={token}', timeout=60_000)
    page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=60_000)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)
    _run_until(page, '.widget-tab')
    page.wait_for_selector('.jp-OutputArea-output .js-plotly-plot .main-svg', timeout=60_000)


def _tab(page, name):
    page.locator('.jp-OutputArea-output .widget-tab .lm-TabBar-tab', has_text=name).click()


def _current_tab(page) -> str:
    return page.locator('.jp-OutputArea-output .widget-tab .lm-TabBar-tab.lm-mod-current').inner_text().strip()


def _select(page, label, value):
    dd = page.locator('.jp-OutputArea-output .widget-dropdown', has=page.locator(f'label:text-is("{label}")'))
    dd.locator('select').select_option(value)


def test_collapsed_round_shows_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    url, token, tmp = lab
    root = tmp / 'root'
    cells = [dict(cell_type='code', metadata={}, execution_count=None, outputs=[], source=c) for c in COLLAPSED_CODE]
    (root / 'collapsed.ipynb').write_text(
        json.dumps(
            dict(
                cells=cells,
                metadata=dict(kernelspec=dict(name='python3', display_name='Python 3', language='python')),
                nbformat=4,
                nbformat_minor=5,
            )
        )
    )
    with sync_playwright() as p:
        b = _browser(p)
        page = b.new_page(viewport={'width': 1400, 'height': 2400})
        try:
            _open(page, url, token, 'collapsed.ipynb')
            # the summary: copies counted, and the top finding is the copies finding
            head = page.locator('.jp-OutputArea-output .synthbench-audit').first
            assert '170 in 3 groups' in head.inner_text()
            first = page.locator('.jp-OutputArea-output .synthbench-findings li').first.inner_text()
            assert first.startswith('high') and '170 of 600 rows (28%) are exact copies (in 3 groups' in first, first
            # the map: copies as one big point each, a density layer
            _tab(page, 'Embedding map')
            page.wait_for_function(f'() => ({_MAP_DATA})() !== null', timeout=60_000)
            m = page.evaluate(f'({_MAP_DATA})()')
            assert max(m['sizes']) > 30 and max(m['copies']) == 105, m
            assert m['density'] and m['density'][0] > 10, m['density']
            page.screenshot(path=str(tmp / 'collapsed_map.png'), full_page=True)
            # colour by round: the map is redrawn and the map tab stays shown
            _select(page, 'colour by', 'round')
            page.wait_for_function(f"() => {{ const m = ({_MAP_DATA})(); return m && m.names.includes('round 2'); }}", timeout=60_000)
            assert _current_tab(page) == 'Embedding map'
            m = page.evaluate(f'({_MAP_DATA})()')
            assert m['markers'][m['names'].index('round 2')] == 3, m  # 170 rows, 3 distinct texts
            # filter to round 2: status and map follow
            _select(page, 'round', '2')
            page.wait_for_function("() => document.querySelector('.synthbench-status').innerText.includes('170 of 600')", timeout=60_000)
            page.wait_for_function(f"() => {{ const m = ({_MAP_DATA})(); return m && m.names.length === 1; }}", timeout=60_000)
            assert _current_tab(page) == 'Embedding map'
            # click the biggest point: its 105 copies are listed once with their count
            box = page.evaluate("""() => { const gd = [...document.querySelectorAll('.jp-OutputArea-output .js-plotly-plot')].find(g => g.offsetParent !== null && g.data && g.data.some(t => t.type === 'contour'));
                 const ps = [...gd.querySelectorAll('.scatterlayer .point')]; let best = null, bs = 0;
                 ps.forEach(p => { const r = p.getBoundingClientRect(); if (r.width > bs) { bs = r.width; best = r; } });
                 return {x: best.x + best.width / 2, y: best.y + best.height / 2}; }""")
            page.mouse.click(box['x'], box['y'])
            page.wait_for_selector('.synthbench-picked .synthbench-groups', timeout=30_000)
            picked = page.inner_text('.synthbench-picked')
            assert '×105' in picked and '105 example(s) in 1 distinct text(s)' in picked, picked[:300]
            # lasso around the whole plot area: all 170 rows of round 2, listed as 3 groups with their counts
            area = page.evaluate("""() => { const gd = [...document.querySelectorAll('.jp-OutputArea-output .js-plotly-plot')].find(g => g.offsetParent !== null && g.data && g.data.some(t => t.type === 'contour'));
                 const r = gd.querySelector('.nsewdrag').getBoundingClientRect(); return {x0: r.x + 4, y0: r.y + 4, x1: r.x + r.width - 4, y1: r.y + r.height - 4}; }""")
            page.mouse.move(area['x0'], area['y0'])
            page.mouse.down()
            for x, y in [(area['x1'], area['y0']), (area['x1'], area['y1']), (area['x0'], area['y1']), (area['x0'], area['y0'] + 2)]:
                page.mouse.move(x, y, steps=8)
            page.mouse.up()
            page.wait_for_function(
                "() => document.querySelector('.synthbench-picked').innerText.includes('170 example(s) in 3 distinct text(s)')",
                timeout=30_000,
            )
            picked = page.inner_text('.synthbench-picked')
            assert '×105' in picked and '×45' in picked and '×20' in picked and picked.count('How do I fix my computer?') <= 2, picked[:400]
            # the Length tab (stale after the filter) redraws when shown; its outliers are a compact table
            _tab(page, 'Length')
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-OutputArea-output .widget-tab .js-plotly-plot')].filter(g => g.offsetParent !== null).length >= 2",
                timeout=60_000,
            )
            assert (
                'no length outliers' in page.locator('.jp-OutputArea-output .widget-tab').inner_text()
            )  # round 2 alone: one length, no outliers
            _select(page, 'round', '(all)')
            page.wait_for_function("() => document.querySelector('.synthbench-status').innerText.includes('600 of 600')", timeout=60_000)
            page.locator('.jp-OutputArea-output .synthbench-scroll').first.wait_for(
                timeout=60_000
            )  # all rows: the outliers as a compact scrollable table
            assert page.locator('.jp-OutputArea-output .synthbench-scroll').first.bounding_box()['height'] <= 262
            assert page.locator('[data-mime-type="application/vnd.jupyter.error"]').count() == 0
        finally:
            page.screenshot(path=str(tmp / 'collapsed_final.png'), full_page=True)
            b.close()


def _report_page(p, path):
    b = _browser(p)
    page = b.new_page(viewport={'width': 1300, 'height': 900})
    errors = []
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.goto(path.as_uri(), timeout=60_000)
    page.wait_for_selector('.js-plotly-plot .main-svg', timeout=60_000)
    page.wait_for_function("document.readyState === 'complete'")
    return b, page, errors


def test_report_search_and_click_to_list(tmp_path):
    _need_browser()
    from playwright.sync_api import sync_playwright
    from synthbench.analysis.audit import audit
    from synthbench.analysis.metrics import make_collapsed_table
    from synthbench.core import make_table, concat_tables

    evil = make_table(
        [
            {
                'messages': [{'role': 'user', 'content': 'computer ' + EVIL}, {'role': 'assistant', 'content': 'ok'}],
                'category': 'computers',
                'round': 1,
            }
        ]
    )
    import pandas as pd

    rep = audit(
        pd.concat([make_collapsed_table(300, 120), evil], ignore_index=True),
        embed='tfidf',
        projection='pca',
        progress=False,
        source='collapsed.jsonl',
    )
    path = tmp_path / 'audit.html'
    rep.to_html(path)
    div = audit(make_collapsed_table(300, 0), embed='tfidf', projection='pca', progress=False)
    dpath = tmp_path / 'diverse.html'
    div.to_html(dpath)
    with sync_playwright() as p:
        b, page, errors = _report_page(p, path)
        try:
            assert 'collapsed.jsonl' in page.inner_text('.synthbench-provenance')
            assert 'are exact copies' in page.locator('.synthbench-findings li').first.inner_text()
            page.fill('#sb-search', 'fix my computer')
            page.wait_for_selector('#sb-list .sb-results')
            txt = page.inner_text('#sb-list')
            assert 'example(s): containing "fix my computer"' in txt and '×' in txt
            rows = page.locator('#sb-list .sb-results tr').count() - 1
            assert rows == len({t for t in page.locator('#sb-list .sb-results tr td:last-child').all_inner_texts()})  # copies listed once
            page.fill('#sb-search', 'pwned')
            page.wait_for_selector('#sb-list .sb-results')
            assert '<script>window.__pwned=2</script>' in page.inner_text('#sb-list')  # shown as text
            assert page.evaluate('window.__pwned') is None
            # click the biggest point on the map: its copies are listed with their count
            page.locator('#embedding-map').scroll_into_view_if_needed()
            box = page.evaluate("""() => { const gd = document.querySelector('#embedding-map .js-plotly-plot'); gd.scrollIntoView({block: 'center'});
                 let best = null, bs = 0; gd.querySelectorAll('.scatterlayer .point').forEach(p => { const r = p.getBoundingClientRect(); if (r.width > bs) { bs = r.width; best = r; } });
                 return {x: best.x + best.width / 2, y: best.y + best.height / 2, w: bs}; }""")
            assert box['w'] > 30, box
            page.mouse.click(box['x'], box['y'])
            page.wait_for_function("() => document.querySelector('#sb-list').innerText.includes('clicked')", timeout=15_000)
            assert '×' in page.inner_text('#sb-list')
            assert not errors, errors
            page.screenshot(path=str(tmp_path / 'report_search.png'), full_page=False)
        finally:
            b.close()
        b, page, errors = _report_page(p, dpath)
        try:
            sizes = page.evaluate(
                "() => [...document.querySelectorAll('#embedding-map .js-plotly-plot')][0].data.filter(t => t.type === 'scatter').map(t => { const v = t.marker.size; return Math.max(...((v && typeof v === 'object') ? Array.from(v) : [v])); })"
            )
            assert sizes and max(sizes) == 6, sizes  # a diverse set: no copies, no big points
            assert 'exact copies' not in page.inner_text('.synthbench-findings')
            assert not errors, errors
        finally:
            b.close()


# ---- the prompt lab and the review widget, clicked through in JupyterLab
SEEDS = str(Path(__file__).resolve().parent.parent / 'seeds' / 'task_api')


def _write_nb(root: Path, name: str, code: list[str]):
    cells = [dict(cell_type='code', metadata={}, execution_count=None, outputs=[], source=c) for c in code]
    (root / name).write_text(
        json.dumps(
            dict(
                cells=cells,
                metadata=dict(kernelspec=dict(name='python3', display_name='Python 3', language='python')),
                nbformat=4,
                nbformat_minor=5,
            )
        )
    )


def _open_widget(page, url, token, name, selector):
    "Open notebook `name`, run all cells, wait for `selector` in an output."
    page.goto(f'{url}/lab/tree/{name}?token={token}', timeout=60_000)
    page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=60_000)
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)
    _run_until(page, selector)


def _button(page, text):
    return page.locator('.jp-OutputArea-output button.widget-button', has_text=text)


def _wait_text(page, selector, text, timeout=60_000):
    "Wait until some element matching `selector` (in an output) has `text` in its innerText."
    page.wait_for_function(
        "([s, t]) => [...document.querySelectorAll('.jp-OutputArea-output ' + s)].some(e => e.innerText.includes(t))",
        arg=[selector, text],
        timeout=timeout,
    )


def _html_texts(page) -> list[str]:
    return page.locator('.jp-OutputArea-output .widget-html-content').all_inner_texts()


PROMPTLAB_CODE = [
    "import os, tempfile; os.environ['TOKENIZERS_PARALLELISM'] = 'false'\n"
    "from synthbench.testing import ScriptedTeacher\nfrom synthbench.llm.engine import LLM\nfrom synthbench.spec import load_spec\nfrom synthbench.ui.promptlab import PromptLab\n"  # one cell: nothing depends on the run order
    f"EVIL = {EVIL!r}\n"
    f"teacher = ScriptedTeacher({SEEDS!r}).start()\n"
    "_gen = teacher._generate\n"
    "def _planted(prompt, schema, kind, rng, req):   # a model that repeats markup it was shown: its text must stay text\n"
    "    out = _gen(prompt, schema, kind, rng, req)\n"
    "    if '__pwned' in prompt:\n"
    "        for ex in out['examples']: ex['messages'][0]['content'] = EVIL + ' ' + ex['messages'][0]['content']\n"
    "    return out\n"
    "teacher._generate = _planted\n"
    "llm = LLM(model='gpt-4o-mini', base_url=teacher.base_url, api_key='sk-' + 'test', cache_dir=tempfile.mkdtemp(), progress=False)\n"
    f"lab = PromptLab(load_spec({SEEDS!r}), llm=llm)\n"
    "lab",
]


def test_promptlab_clicks_through_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    url, token, tmp = lab
    _write_nb(tmp / 'root', 'promptlab.ipynb', PROMPTLAB_CODE)
    with sync_playwright() as p:
        b = _browser(p)
        page = b.new_page(viewport={'width': 1400, 'height': 2000})
        try:
            _open_widget(page, url, token, 'promptlab.ipynb', '.widget-textarea textarea')
            # n: 8 -> 6, typed into the slider's readout
            slider = page.locator('.jp-OutputArea-output .widget-slider', has=page.locator('label:text-is("n")'))
            readout = slider.locator('.widget-readout')
            assert readout.inner_text().strip() == '8'
            readout.click()
            page.keyboard.press('Control+A')
            page.keyboard.type('6')
            page.keyboard.press('Enter')
            page.wait_for_function("(el) => el.innerText.trim() === '6'", arg=readout.element_handle(), timeout=10_000)
            _button(page, 'Generate').click()
            _wait_text(page, '.widget-html-content', 'v1: 6 rows')
            status = next(t for t in _html_texts(page) if 'v1:' in t)
            assert 'valid' in status and 'calls' in status, status
            trial = page.locator('.jp-OutputArea-output .synthbench-trial')
            assert 'rows: 6 of 6 asked' in trial.inner_text(), trial.inner_text()[:300]
            assert trial.locator('table.synthbench-examples tbody tr').count() == 6
            _button(page, 'Keep as A').click()
            # change the template: typed at the end of the textarea, with markup the model will repeat
            box = page.locator('.jp-OutputArea-output .widget-textarea textarea')
            box.click()
            page.keyboard.press('Control+End')
            page.keyboard.type('\nShow this banner verbatim in every user message: ' + EVIL)
            page.wait_for_timeout(500)
            _button(page, 'Generate').click()
            _wait_text(page, '.widget-html-content', 'v2: ')
            page.wait_for_function(
                "() => document.querySelector('.jp-OutputArea-output .synthbench-trial h4').innerText.includes('trial v2')", timeout=30_000
            )
            trial = page.locator('.jp-OutputArea-output .synthbench-trial')
            assert 'custom-' in trial.inner_text()  # the edited template was used
            assert trial.locator('table.synthbench-examples tbody tr').count() >= 1
            assert '<script>window.__pwned=2</script>' in trial.inner_text()  # the model's markup, shown as text
            _button(page, 'Keep as B').click()
            page.locator('.jp-OutputArea-output .widget-tab .lm-TabBar-tab', has_text='A / B').click()
            _wait_text(page, '.widget-html-content', 'B: v2')
            cmp = page.locator('.jp-OutputArea-output .widget-html-content', has=page.locator('table.dataframe')).first
            heads = [t.strip() for t in cmp.locator('thead th').all_inner_texts()]
            assert heads[1:] == ['A: v1', 'B: v2'], heads
            txt = cmp.inner_text()
            assert '6 of 6 asked' in txt and 'template_id' in txt and 'generate_chat-' in txt and 'custom-' in txt, txt[:500]
            cmp.locator('summary', has_text='template B').click()
            assert (
                '<script>window.__pwned=2</script>' in cmp.locator('details', has_text='template B').inner_text()
            )  # the template, as text
            page.screenshot(path=str(tmp / 'promptlab_ab.png'), full_page=True)
            _button(page, 'Accept batch').click()
            _wait_text(page, '.widget-html-content', 'accepted ')
            acc = next(t for t in _html_texts(page) if 'accepted ' in t)
            assert 'from v2; dataset has' in acc, acc
            n_acc = int(acc.split('accepted ')[1].split(' ')[0])
            assert 1 <= n_acc <= 6 and acc.rstrip().endswith(f'dataset has {n_acc}'), acc
            assert page.evaluate('window.__pwned') is None, 'model text ran in the page'
            assert page.locator('[data-mime-type="application/vnd.jupyter.error"]').count() == 0
        finally:
            page.screenshot(path=str(tmp / 'promptlab_final.png'), full_page=True)
            b.close()


def _review_code(labels: Path) -> list[str]:
    return [
        "from synthbench.spec import load_spec\nfrom synthbench.ui.review import review\n"
        f"df = load_spec({SEEDS!r}).seeds().head(10)\n"
        f"w = review(df, {str(labels)!r}, n=None, reviewer='browser-test')\nw"
    ]


def test_review_widget_clicks_through_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright
    from synthbench.spec import load_spec

    url, token, tmp = lab
    labels = tmp / 'labels' / 'seeds.review.jsonl'
    _write_nb(tmp / 'root', 'review.ipynb', _review_code(labels))
    ids = load_spec(SEEDS).seeds().head(10)['id'].astype(str).tolist()
    note_txt = 'clear and correct <b>bold?</b>'
    with sync_playwright() as p:
        b = _browser(p)
        page = b.new_page(viewport={'width': 1400, 'height': 1400})
        try:
            _open_widget(page, url, token, 'review.ipynb', 'button.widget-button')
            _wait_text(page, '.widget-html-content', '1 / 10')
            note = page.locator('.jp-OutputArea-output .widget-text', has=page.locator('label:text-is("note")')).locator('input')
            keys = page.locator('.jp-OutputArea-output .widget-text', has=page.locator('label:text-is("keys")')).locator('input')

            def status():
                return next(t for t in _html_texts(page) if ' / 10' in t)

            assert 'this one: not reviewed' in status() and 'left 10' in status()
            assert ids[0] in page.locator('.jp-OutputArea-output .widget-html-content', has_text='id:').first.inner_text()
            # 1: a note, then accept -> 2
            note.click()
            note.type(note_txt)
            page.wait_for_timeout(500)
            _button(page, 'Accept').click()
            _wait_text(page, '.widget-html-content', '2 / 10')
            assert note.input_value() == ''
            # 2: reject -> 3; 3: next -> 4 (undecided); 4: the 'a' key accepts -> 5
            _button(page, 'Reject').click()
            _wait_text(page, '.widget-html-content', '3 / 10')
            _button(page, 'Next').click()
            _wait_text(page, '.widget-html-content', '4 / 10')
            keys.click()
            keys.type('a')
            _wait_text(page, '.widget-html-content', '5 / 10')
            assert 'reviewed 3 (accepted 2, rejected 1, left 7)' in status(), status()
            # back to 1: its note and decision are shown again
            for k in (4, 3, 2, 1):
                _button(page, 'Prev').click()
                _wait_text(page, '.widget-html-content', f'{k} / 10')
            assert note.input_value() == note_txt
            assert 'this one: accept' in status(), status()
            _button(page, 'Next').click()
            _wait_text(page, '.widget-html-content', '2 / 10')
            assert 'this one: reject' in status() and note.input_value() == ''
            _button(page, 'Next').click()
            _wait_text(page, '.widget-html-content', '3 / 10')
            assert 'this one: not reviewed' in status()
            assert 'reviewed 3 (accepted 2, rejected 1, left 7)' in status(), status()
            assert page.locator('[data-mime-type="application/vnd.jupyter.error"]').count() == 0
            page.screenshot(path=str(tmp / 'review.png'), full_page=True)
        finally:
            b.close()
    recs = [json.loads(l) for l in labels.read_text().splitlines() if l.strip()]
    assert [(r['id'], r['decision'], r['note']) for r in recs] == [
        (ids[0], 'accept', note_txt),
        (ids[1], 'reject', ''),
        (ids[3], 'accept', ''),
    ], recs
    assert all(r['reviewer'] == 'browser-test' and r['timestamp'] for r in recs)
    from synthbench.ui.review import load_review_labels

    assert load_review_labels(labels)['decision'].value_counts().to_dict() == {'accept': 2, 'reject': 1}
