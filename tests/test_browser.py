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
ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--no-first-run', '--disable-dev-shm-usage']
EVIL = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'

def _need_browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f'NO BROWSER: {CHROMIUM} is missing and could not be installed (apt-get install -y chromium); the dashboard was NOT checked in a browser')
    try: import playwright.sync_api  # noqa
    except ImportError: pytest.skip('NO BROWSER DRIVER: the python package playwright is not installed; the dashboard was NOT checked in a browser')

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

NB_CODE = [
    "import os; os.environ['TOKENIZERS_PARALLELISM'] = 'false'\n"
    "from synthbench.audit import audit\nfrom synthbench.metrics import make_demo_table\nfrom synthbench.core import make_table, concat_tables",
    "df = make_demo_table(40)\n"
    f"evil = make_table([{{'messages': [{{'role': 'user', 'content': {EVIL!r}}}, {{'role': 'assistant', 'content': 'ok ' + {EVIL!r} + ' and more' * 300}}], 'category': 'billing', 'round': 1, 'source': 'generated'}}])\n"
    "df = concat_tables(df, evil)\n"
    "rep = audit(df, embed='tfidf', projection='pca', progress=False)\n"
    "rep",
]

def _notebook(path:Path):
    cells = [dict(cell_type='code', metadata={}, execution_count=None, outputs=[], source=c) for c in NB_CODE]
    nb = dict(cells=cells, metadata=dict(kernelspec=dict(name='python3', display_name='Python 3', language='python')), nbformat=4, nbformat_minor=5)
    path.write_text(json.dumps(nb))

@pytest.fixture
def lab(tmp_path):
    _need_browser()
    root = tmp_path / 'root'; root.mkdir()
    _notebook(root / 'dash.ipynb')
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', JUPYTER_CONFIG_DIR=str(tmp_path / 'cfg'),
               JUPYTER_RUNTIME_DIR=str(tmp_path / 'rt'))
    log = open(tmp_path / 'lab.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
                             f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={root}', '--ServerApp.disable_check_xsrf=True',
                             '--LabApp.news_url=', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
                             *(['--allow-root'] if os.geteuid() == 0 else [])],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f'http://127.0.0.1:{port}'
    for _ in range(120):
        try:
            urllib.request.urlopen(f'{url}/api/status?token={token}', timeout=2); break
        except Exception:
            if proc.poll() is not None: pytest.fail(f'jupyter lab exited: {(tmp_path / "lab.log").read_text()[-2000:]}')
            time.sleep(0.5)
    else: pytest.fail('jupyter lab did not start in 60 s')
    yield url, token, tmp_path
    proc.terminate()
    try: proc.wait(10)
    except subprocess.TimeoutExpired: proc.kill()
    log.close()

def _browser(p):
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)

def _accept_dialogs(page):
    "Accept JupyterLab dialogs (e.g. 'Select Kernel', which can pop up while the session starts)."
    for _ in range(3):
        btn = page.locator('.jp-Dialog .jp-Dialog-button.jp-mod-accept')
        if not btn.count(): return
        btn.first.click(); page.wait_for_timeout(500)

def _run_all(page):
    "Run > Run All Cells from JupyterLab's menu; retried once if a dialog swallowed the first try."
    for attempt in range(2):
        _accept_dialogs(page)
        page.click('.lm-MenuBar-item:has-text("Run")')
        page.click('.lm-Menu-item[data-command="runmenu:run-all"]')
        page.wait_for_timeout(1500); _accept_dialogs(page)
        try:
            page.wait_for_function("() => [...document.querySelectorAll('.jp-InputPrompt')].some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))", timeout=20_000)
            return
        except Exception:
            if attempt: raise

def test_dashboard_renders_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright
    url, token, tmp = lab
    with sync_playwright() as p:
        b = _browser(p); page = b.new_page(viewport={'width': 1400, 'height': 2600})
        try:
            page.goto(f'{url}/lab/tree/dash.ipynb?token={token}', timeout=60_000)
            page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=60_000)
            page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=60_000)
            _run_all(page)
            page.wait_for_selector('.jp-OutputArea-output .widget-tab', timeout=120_000)
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
            assert '<script>window.__pwned=2</script>' in page.inner_text('.synthbench-picked') or 'example(s)' in page.inner_text('.synthbench-picked')
            # the Length tab lists the (very long) generated example as an outlier, its HTML shown as text
            page.locator('.jp-OutputArea-output .widget-tab .lm-TabBar-tab', has_text='Length').click()
            page.wait_for_timeout(800)
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
            page.screenshot(path=str(tmp / 'dashboard_final.png'), full_page=True); b.close()

def test_html_report_renders_as_file(tmp_path):
    _need_browser()
    from playwright.sync_api import sync_playwright
    from synthbench.audit import audit
    from synthbench.metrics import make_demo_table
    from synthbench.core import make_table, concat_tables
    evil = make_table([{'messages': [{'role': 'user', 'content': EVIL}, {'role': 'assistant', 'content': 'ok ' + EVIL + ' and more' * 300}], 'category': 'billing', 'round': 1}])
    df = concat_tables(make_demo_table(60), evil)
    rep = audit(df, embed='tfidf', projection='pca', progress=False)
    path = tmp_path / 'audit.html'; rep.to_html(path)
    with sync_playwright() as p:
        b = _browser(p); page = b.new_page(viewport={'width': 1300, 'height': 900})
        errors = []; page.on('pageerror', lambda e: errors.append(str(e)))
        try:
            page.goto(path.as_uri(), timeout=60_000)
            page.wait_for_selector('.js-plotly-plot .main-svg', timeout=60_000)
            n_plots = page.locator('.js-plotly-plot').count()
            assert n_plots == rep_to_html_count(rep), n_plots
            assert page.locator('.plot-container').count() == n_plots
            assert page.evaluate('window.__pwned') is None, 'generated HTML ran in the report'
            assert '<script>window.__pwned=2</script>' in page.inner_text('#length')   # the long example is listed as an outlier, as text
            assert not errors, errors
            page.screenshot(path=str(tmp_path / 'report.png'), full_page=True)
        finally: b.close()

def rep_to_html_count(rep) -> int:
    from synthbench.audit import report_sections
    return sum(not isinstance(it, str) for _, items in report_sections(rep) for it in items)
