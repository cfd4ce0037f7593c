"""`synthbench report` / `data_report` on real runs against the scripted teacher: the student figures a finetune stage wrote,
the audit findings, TSTR computed for a classification run (n/a with its reason otherwise), CLI exit codes and escaped HTML."""

import contextlib, io, json, re, shutil
from pathlib import Path
import pytest
from synthbench.cli import main
from synthbench.testing import ScriptedTeacher
from synthbench.run.workbench import run_pipeline, compare_runs

REPO = Path(__file__).resolve().parents[1]
STAGES = ['add_seeds', 'validate', {'judge': {'threshold': 3.5}}, 'dedup', 'filter', 'audit']


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv('SB_DW_KEY', 'sk-' + 'datawork-0123456789')
    monkeypatch.setenv('SYNTHBENCH_CACHE_DIR', str(tmp_path / 'cache'))


def make_run(runs_dir, task, stages, name=None, n=40):
    with ScriptedTeacher(REPO / 'seeds' / task, defect_rate=0.2, seed=1) as t:
        cfg = {
            'name': name or task,
            'task': str(REPO / 'seeds' / task),
            'seed': 3,
            'llm': {'model': 'gpt-4o-mini', 'base_url': t.base_url, 'api_key_env': 'SB_DW_KEY', 'progress': False, 'max_retries': 3},
            'stages': [{'generate': {'n': n}}, *stages],
        }
        return run_pipeline(cfg, runs_dir=runs_dir, verbose=False)


def cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(['report', *map(str, args)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope='module')
def tickets(tmp_path_factory):
    "A support_tickets run (classification, no finetune stage)."
    d = tmp_path_factory.mktemp('dw_tickets')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('SB_DW_KEY', 'sk-' + 'datawork-0123456789')
        mp.setenv('SYNTHBENCH_CACHE_DIR', str(d / 'cache'))
        run = make_run(d / 'runs', 'support_tickets', [*STAGES, {'export': {'format': 'text'}}])
    assert run.ok, run.reason
    return run


def test_tickets_report_computes_tstr_on_the_exported_table(tickets):
    from synthbench.analysis.datawork import data_report
    from synthbench.analysis.tstr import tstr
    from synthbench.analysis.evaluate import load_heldout

    code, out, err = cli(tickets.path, '--json')
    assert code == 0, err
    d = json.loads(out)
    assert d['student'] == {'measured': False, 'reason': 'no finetune stage', 'verdict': 'not measured: no finetune stage'}
    t = d['tstr']
    assert t['measured'] and t['n_train'] == len(tickets.final) and t['n_test'] > 0
    # the same figures as TSTR run by hand on the exported table against the held-out tickets
    direct = tstr(tickets.final, load_heldout(REPO / 'seeds' / 'support_tickets'), on_unseen='drop', ratios=None)
    assert t['macro_f1'] == pytest.approx(direct.macro_f1) and t['reference']['macro_f1'] == pytest.approx(direct.reference['macro_f1'])
    assert d['verdict'].startswith('not measured: no finetune stage; TSTR macro-F1 ')
    # rows: every dropped row of the filter stage is counted under its rule
    dropped = __import__('pandas').read_parquet(tickets.path / '06_filter.dropped.parquet')
    assert d['rows']['dropped'] == len(dropped) > 0 and d['rows']['kept'] == len(tickets.final)
    assert set(d['rows']['dropped_by_reason']) <= {'invalid', 'duplicate', 'judge rejected', 'not judged'}
    # the audit figures are the audit stage's
    a = json.loads((tickets.path / '07_audit.report.json').read_text())
    assert d['audit']['headline']['n'] == a['metrics']['n'] and [f['text'] for f in d['audit']['findings']] == a['findings'][:5]
    assert err.strip().splitlines()[-1] == f"synthbench report: support_tickets: {d['verdict']}"


def test_html_escapes_planted_markup_and_the_audit_page_gets_the_section(tickets, tmp_path):
    from synthbench.analysis.datawork import data_report
    from synthbench.analysis.audit import audit

    run_dir = tmp_path / 'evil'
    shutil.copytree(tickets.path, run_dir)
    rp = run_dir / '07_audit.report.json'
    a = json.loads(rp.read_text())
    a['metrics']['findings_ranked'] = [{'severity': 'high', 'kind': 'x', 'text': '<script>alert("planted")</script>'}]
    rp.write_text(json.dumps(a))
    m = json.loads((run_dir / 'manifest.json').read_text())
    m['name'] = '<img src=x onerror=alert(1)>'
    (run_dir / 'manifest.json').write_text(json.dumps(m))
    code, out, err = cli(run_dir, '--no-tstr', '-o', tmp_path / 'r.html')
    assert code == 0, err
    assert out == ''  # -o without --json: the HTML only
    page = (tmp_path / 'r.html').read_text()
    assert '<script' not in page and '<img' not in page
    assert '&lt;script&gt;alert(&quot;planted&quot;)&lt;/script&gt;' in page and '&lt;img src=x onerror=alert(1)&gt;' in page
    assert 'Does the data work?' in page and len(page) < 30_000
    rep = data_report(run_dir, run_tstr=False)
    full = audit(tickets.final, progress=False, projection='pca').to_html(data=rep)
    assert full.count('<section id="data-work"') == 1 and '<script>alert("planted")' not in full
    assert '&lt;script&gt;alert(&quot;planted&quot;)' in full


def test_exit_codes_and_one_line_errors(tmp_path, tickets):
    code, out, err = cli(tmp_path / 'missing')
    assert code == 2 and out == '' and len(err.strip().splitlines()) == 1
    assert str(tmp_path / 'missing') in err and 'no such folder' in err and 'Traceback' not in err
    (tmp_path / 'empty').mkdir()
    code, out, err = cli(tmp_path / 'empty')
    assert code == 2 and len(err.strip().splitlines()) == 1 and 'not a run folder (no manifest.json)' in err
    code, out, err = cli(tickets.path, '--compare', tmp_path / 'empty')
    assert code == 2 and str(tmp_path / 'empty') in err
    # a run whose last stage failed: the report is printed, exit 1, the last stderr line says why
    run = make_run(
        tmp_path / 'runs',
        'support_tickets',
        ['validate', {'name': 'boom', 'fn': 'synthbench.run.workbench:_fail_stage', 'params': {'reason': 'HTTP 500: planted failure'}}],
        name='broken',
        n=8,
    )
    assert run.manifest['status'] == 'failed'
    code, out, err = cli(run.path, '--no-tstr', '--no-audit')
    assert code == 1, err
    last = err.strip().splitlines()[-1]
    assert (
        last.startswith('synthbench report: run broken failed: stage boom failed') and 'planted failure' in last and 'Traceback' not in err
    )
    d = json.loads(out)
    assert d['status'] == 'failed' and d['audit']['measured'] is False and d['rows']['stages'][-1]['status'] == 'failed'


def test_compare_two_runs(tmp_path, tickets):
    from synthbench.analysis.datawork import data_report, compare_reports

    other = make_run(tmp_path / 'runs', 'support_tickets', [*STAGES[:-1], {'export': {'format': 'text'}}], name='tickets_noaudit', n=20)
    code, out, err = cli(tickets.path, '--compare', other.path, '--no-tstr')
    assert code == 0, err
    d = json.loads(out)
    assert [r['name'] for r in d['runs']] == ['support_tickets', 'tickets_noaudit']
    rows = {r['figure']: r for r in d['comparison'][0]}
    assert rows['rows kept']['change'] == len(other.final) - len(tickets.final)
    # no audit stage in the second run: the report audited its final table
    assert d['runs'][1]['audit']['source'] == f'audit of the final table ({len(other.final)} rows)'
    code, out, err = cli(tickets.path, '--compare', other.path, '--no-tstr', '--no-audit', '-o', tmp_path / 'both.html')
    page = (tmp_path / 'both.html').read_text()
    assert code == 0 and out == '' and page.count('<h2>Does the data work?</h2>') == 2 and 'support_tickets vs tickets_noaudit' in page
    assert 'no audit stage and not computed' in page


@pytest.mark.slow
def test_task_api_run_with_a_finetune_stage(tmp_path):
    "One real run: scripted teacher, audit, export, 2 LoRA steps; the report reads base vs fine-tuned with intervals."
    run = make_run(
        tmp_path / 'runs',
        'task_api',
        [*STAGES, {'export': {'format': 'sharegpt'}}, {'finetune': {'steps': 2, 'limit': 8, 'max_len': 96, 'max_new_tokens': 40}}],
    )
    assert run.ok, run.reason
    code, out, err = cli(run.path)
    assert code == 0, err
    d = json.loads(out)
    ev = d['student']['evaluation']
    assert d['student']['measured'] and set(ev) == {'base', 'fine-tuned'}
    for who in ev:
        f = ev[who]['figures']['format_compliance']
        assert ev[who]['n'] == 8 and 0 <= f['lo'] <= f['value'] <= f['hi'] <= 1
    assert re.fullmatch(
        r'fine-tuned (beats|is worse than|does not clearly differ from) base on held-out format compliance: '
        r'\d+% \[\d+%, \d+%\] → \d+% \[\d+%, \d+%\] \(8 rows\)',
        d['verdict'],
    ), d['verdict']
    assert d['tstr'] == {
        'measured': False,
        'reason': 'task_api is a chat task; TSTR needs a classification task (text → label). The student evaluation is the test here',
    }
    a = json.loads((run.path / '07_audit.report.json').read_text())
    assert d['audit']['n_findings'] == len(a['findings']) and [f['text'] for f in d['audit']['findings']] == a['findings'][:5]
    # compare_runs shows the student figures with intervals
    cmp = compare_runs([run.path])
    fc = cmp.loc['student fine-tuned: held-out format compliance'].iloc[0]
    assert re.fullmatch(r'\d+% \[\d+%, \d+%\]', fc), fc
    assert cmp.loc['student base: held-out rows'].iloc[0] == 8
