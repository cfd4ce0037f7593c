"Runs: pipeline YAML against the fake OpenAI server (run dir, manifest, resume, no key), compare_runs, and the demo on the local model."

import hashlib, json, os, re, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
from fake_openai import FakeOpenAIServer
from synthbench.run.workbench import run_pipeline, Run, compare_runs, load_pipeline, PipelineError
from synthbench.cli import main

REPO = Path(__file__).resolve().parents[1]
SECRET = 'sk-' + 'test-SECRET-0123456789abcdef'  # a fake key, split so secret scanners don't flag it
TITLES = [
    'Buy milk',
    'Call the bank',
    'Renew passport',
    'Book dentist',
    'Water plants',
    'Pay rent',
    'Fix bike',
    'Email Sam',
    'Clean garage',
    'Plan trip',
    'Send invoice',
    'Order toner',
]


def _schema_props(body):
    rf = body.get('response_format') or {}
    return ((rf.get('json_schema') or {}).get('schema') or {}).get('properties') or {}


def responder(body):
    "Canned structured answers: scores for every judge criterion the schema asks, example batches for generate."
    h = int(hashlib.md5(json.dumps(body.get('messages')).encode()).hexdigest(), 16)
    props = _schema_props(body)
    if any(k.endswith('_score') for k in props) or 'relevance_score' in json.dumps(body):
        names = [k for k in props if k.endswith('_score')] or [f'{c}_score' for c in ('relevance', 'accuracy', 'clarity', 'format')]
        return json.dumps({**{n: 4 + (h % 2) for n in names}, **{n[:-6] + '_reason': 'fine' for n in names}, 'summary': 'ok'})
    exs = []
    for j in range(4):
        t = TITLES[(h + j) % len(TITLES)] + f' {h % 997}-{j}'
        exs.append(
            {
                'messages': [
                    {'role': 'user', 'content': f'please add a task: {t}'},
                    {'role': 'assistant', 'content': f"Created task: '{t}' | Priority: medium | Due: none"},
                ]
            }
        )
    return json.dumps({'examples': exs})


def write_pipeline(tmp_path, srv, extra_stage='', name='fake'):
    p = tmp_path / 'pipeline.yaml'
    p.write_text(f"""name: {name}
task: {REPO / 'seeds' / 'task_api'}
runs_dir: runs
seed: 7
llm: {{model: fake-model, base_url: "{srv.base_url}", api_key_env: SB_TEST_KEY, cache_dir: null, progress: false}}
stages:
  - generate: {{n: 6, k: 4, max_calls: 4}}
  - validate
{extra_stage}  - judge: {{threshold: 3.5}}
  - filter: {{drop: [invalid, rejected]}}
  - export
""")
    return p


@pytest.fixture
def srv(monkeypatch):
    monkeypatch.setenv('SB_TEST_KEY', SECRET)
    with FakeOpenAIServer(responder=responder) as s:
        yield s


def _gen_requests(srv):
    return [b for b in srv.requests if not any(k.endswith('_score') for k in _schema_props(b)) and 'relevance_score' not in json.dumps(b)]


def test_pipeline_writes_run_and_resumes(tmp_path, srv):
    p = write_pipeline(tmp_path, srv)
    run = run_pipeline(p, verbose=False)
    assert run.ok, run.failed
    d = tmp_path / 'runs' / 'fake'
    files = {f.name for f in d.iterdir()}
    assert {
        'manifest.json',
        '01_generate.parquet',
        '02_validate.parquet',
        '03_judge.parquet',
        '04_filter.parquet',
        '05_export.parquet',
        'dataset.jsonl',
        'dataset.parquet',
    } <= files
    m = json.loads((d / 'manifest.json').read_text())
    assert m['task']['name'] == 'task_api' and m['seed'] == 7 and m['synthbench_version']
    assert m['llms']['main']['model'] == 'fake-model' and m['llms']['main']['base_url'].startswith('http://127.0.0.1')
    st = {s['name']: s for s in m['stages']}
    assert st['generate']['rows_out'] >= 1 and st['generate']['calls'] >= 2 and st['generate']['tokens_in'] > 0
    assert st['generate']['prompt_ids'] and st['generate']['models'] == ['fake-model']
    tpl = st['generate']['prompt_templates']
    assert set(st['generate']['prompt_ids']) <= set(tpl) and all('{' in t for t in tpl.values())  # template texts, by id
    assert st['judge']['calls'] == st['judge']['rows_in'] == st['validate']['rows_out']
    assert st['export']['rows_out'] == len(pd.read_json(d / 'dataset.jsonl', lines=True))
    # dropped rows are kept with a reason, and counts add up
    assert st['filter']['rows_in'] == st['filter']['rows_out'] + sum(st['filter']['dropped'].values())
    n_first = len(srv.requests)
    # nothing secret anywhere in the run folder
    for f in d.rglob('*'):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
    # unchanged: every stage is loaded, no request sent (the LLM cache is off, so only stage skipping can explain it)
    run2 = run_pipeline(p, verbose=False)
    assert [s['status'] for s in run2.stages] == ['skipped'] * 5
    assert len(srv.requests) == n_first
    assert run2.manifest['this_session']['calls'] == 0 and run2.manifest['totals']['calls'] == m['totals']['calls'] > 0
    # a changed judge threshold re-runs judge and what follows, never generate
    g1 = len(_gen_requests(srv))
    p.write_text(p.read_text().replace('threshold: 3.5', 'threshold: 4.5'))
    run3 = run_pipeline(p, verbose=False)
    assert [s['status'] for s in run3.stages] == ['skipped', 'skipped', 'ok', 'ok', 'ok']
    assert len(_gen_requests(srv)) == g1 and len(srv.requests) > n_first  # judge re-asked, generate not
    assert run3.stages[3]['rows_out'] <= run2.stages[3]['rows_out']


def test_crashed_run_resumes_without_paying_twice(tmp_path, srv):
    bad = "  - {name: boom, fn: 'synthbench.run.workbench:_fail_stage', params: {kind: server, reason: 'HTTP 500: boom'}}\n"
    p = write_pipeline(tmp_path, srv, extra_stage=bad, name='crash')
    r1 = run_pipeline(p, verbose=False)
    assert not r1.ok and [s['status'] for s in r1.stages] == ['ok', 'ok', 'failed'] and r1.exit_code == 1
    assert r1.failed[0]['error_kind'] == 'server' and r1.reason == 'stage boom failed (server): HTTP 500: boom'
    assert r1.manifest['status'] == 'failed'
    from synthbench.run.workbench import _summary

    summ = _summary(r1)
    assert 'boom' in summ and 'failed' in summ and 'HTTP 500: boom' in summ  # a failed stage is reported, never swallowed
    gen_calls = len(_gen_requests(srv))
    assert gen_calls > 0 and len(srv.requests) == gen_calls  # judge never ran
    p.write_text(p.read_text().replace(bad, ''))
    r2 = run_pipeline(p, verbose=False)
    assert r2.ok and [s['status'] for s in r2.stages] == ['skipped', 'skipped', 'ok', 'ok', 'ok']
    assert len(_gen_requests(srv)) == gen_calls  # generate was not paid for twice


def test_cli_run_and_compare(tmp_path, srv, capsys):
    p = write_pipeline(tmp_path, srv, name='a')
    assert main(['run', str(p), '--quiet']) == 0
    out = capsys.readouterr().out
    assert 'runs/a' in out and 'manifest.json' in out
    p.write_text(p.read_text().replace('n: 6', 'n: 10').replace('name: a', 'name: b'))
    assert main(['run', str(p), '--quiet', '--until', 'judge']) == 0
    cmp = compare_runs([tmp_path / 'runs' / 'a', tmp_path / 'runs' / 'b'])
    assert list(cmp.columns) == ['a', 'b']
    for k in ('rows final', 'calls', 'cost_usd', 'distinct_2', 'judge mean overall'):
        assert k in cmp.index
    assert cmp.loc['calls', 'b'] > 0 and 0 < cmp.loc['distinct_2', 'a'] <= 1
    assert cmp.loc['judge mean overall', 'b'] >= 4
    assert len(Run(tmp_path / 'runs' / 'b').stages) == 3


def test_pipeline_errors(tmp_path, capsys):
    p = tmp_path / 'bad.yaml'
    p.write_text('stages:\n  - generate: {n: 3}\n  - judge:\n      threshold: [\n')
    assert main(['run', str(p)]) == 2
    assert 'bad.yaml, line 5: YAML: not valid YAML' in capsys.readouterr().err
    p.write_text('llm: {model: gpt-4o-mini, api_key: sk-abc}\nstages: [generate]\n')
    with pytest.raises(PipelineError, match='api_key_env'):
        load_pipeline(p)
    p.write_text('stages: [generate, dedupe]\n')
    assert main(['run', str(p)]) == 2
    assert "bad.yaml, line 1: stages[1] (dedupe): unknown stage. Fix: did you mean 'dedup'?" in capsys.readouterr().err
    p.write_text('stages:\n  - generate: {n: 3, bogus_param: 1}\n')
    assert main(['run', str(p)]) == 2
    assert "line 2: stages[0] (generate).bogus_param: stage 'generate' has no parameter 'bogus_param'" in capsys.readouterr().err
    assert main(['run', str(tmp_path / 'missing.yaml')]) == 2
    assert 'no such pipeline file' in capsys.readouterr().err
    # a local embedding model's precision and name are checked with the file, before any stage runs (and any money is spent)
    p.write_text('stages:\n  - generate: {n: 3}\n  - dedup:\n      embed_model: all-MiniLM-L6-v2@bf17\n')
    assert main(['run', str(p)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml, line 4: stages[1] (dedup).embed_model: Embedding model 'all-MiniLM-L6-v2@bf17': unknown precision 'bf17'" in err
    assert 'all-MiniLM-L6-v2@bfloat16' in err and len(err.strip().splitlines()) == 1, err
    p.write_text('stages:\n  - generate: {n: 3}\n  - audit: {embed_model: no-such-model}\n')
    with pytest.raises(PipelineError, match=r"line 3: stages\[1\] \(audit\).embed_model: .*never downloads"):
        load_pipeline(p)
    p.write_text('stages:\n  - generate: {n: 3}\n  - dedup: {embed_model: all-MiniLM-L6-v2@bf16}\n')
    assert load_pipeline(p)['stages'][1]['params'] == {'embed_model': 'all-MiniLM-L6-v2@bf16'}


@pytest.mark.slow
def test_demo_end_to_end_local_model(tmp_path):
    "`synthbench demo` on the embedded SmolLM2 model: every stage runs or is reported, files written."
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1', 'SYNTHBENCH_CACHE_DIR': str(tmp_path / 'cache')}
    env.pop('OPENAI_API_KEY', None)
    env.pop('OPENAI_BASE_URL', None)
    r = subprocess.run(
        ['synthbench', 'demo', '--out', str(tmp_path / 'runs'), '-n', '8', '--seeds', str(REPO / 'seeds')],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=tmp_path,
    )
    d = tmp_path / 'runs' / 'demo'
    assert (d / 'manifest.json').exists(), r.stderr[-3000:]
    m = json.loads((d / 'manifest.json').read_text())
    names = [s['name'] for s in m['stages']]
    assert names == ['generate', 'augment', 'add_seeds', 'validate', 'judge', 'dedup', 'audit', 'export', 'finetune']
    assert 'synthbench demo' in r.stdout and str(d) in r.stdout
    for s in m['stages']:
        assert s['status'] in ('ok', 'partial', 'failed')
        if s['status'] != 'ok':
            assert s['name'] in r.stdout and s['reason'] in r.stdout  # reported, not swallowed
    st = {s['name']: s for s in m['stages']}
    # the 135M model rarely reaches n valid rows: a missed target is `partial` (kind target) and said, never hidden
    assert st['generate']['status'] in ('ok', 'partial', 'failed') and st['generate']['calls'] > 0
    if st['generate']['status'] != 'ok':
        assert st['generate']['error_kind'] in ('target', 'parse')
    assert st['add_seeds']['rows_out'] == st['add_seeds']['rows_in'] + 20  # the 20 hand-written seeds join the table
    assert (d / 'dataset.jsonl').exists() and (d / 'dataset.parquet').exists()
    # the loop is closed: the student trained on the dataset is scored against the base model on the held-out real set
    if st['finetune']['status'] == 'ok':
        assert re.search(r'student: held-out format compliance: base \d+% -> fine-tuned \d+%', r.stdout), r.stdout[-2000:]
        ev = json.loads((d / '09_finetune.report.json').read_text())['evaluation']
        assert set(ev) == {'base', 'fine-tuned'} and all('lo' in e['figures']['format_compliance'] for e in ev.values())
    if st['audit']['status'] == 'ok':
        assert (d / 'report.html').exists() and 'report.html' in r.stdout
    assert not re.search(r'\bsk-[A-Za-z0-9_-]{16,}', (d / 'manifest.json').read_text())  # no key-shaped string
    assert r.returncode == (0 if m['status'] in ('done', 'done_with_warnings') else 1)
    if r.returncode:
        assert r.stderr.strip().splitlines()[-1].startswith('synthbench demo: ')


# ---- prompt lab (61_promptlab): the widget driven by its buttons, no browser ----


def test_try_prompt_and_widget(tmp_path, srv):
    from synthbench.spec import load_spec
    from synthbench.llm.engine import LLM
    from synthbench.ui.promptlab import try_prompt, PromptLab, compare_trials, accept_trial

    spec = load_spec(REPO / 'seeds' / 'task_api')
    llm = LLM(model='fake-model', base_url=srv.base_url, api_key=SECRET, cache_dir=tmp_path / 'cache', progress=False)
    t = try_prompt(spec, n=6, llm=llm, judge=True, name='base', axes={'category': ['create']})
    assert len(t.table) >= 1 and t.validity == 1.0 and t.calls >= 2 and t.judge_mean >= 4
    assert set(t.table['category']) == {'create'} and 0 < t.diversity['distinct_2'] <= 1
    n_req = len(srv.requests)
    again = try_prompt(spec, n=6, llm=llm, judge=True, name='again', axes={'category': ['create']})
    assert again.calls == 0 and len(srv.requests) == n_req  # reproducible from the cache
    assert list(compare_trials(t, again).columns) == ['base', 'again']

    lab = PromptLab(spec, {'fake-model': llm}, judge_llm=llm)
    lab.n.value = 6
    lab.seed_select.value = tuple(spec.seeds()['id'][:3])
    lab.temperature.value = 0.5
    lab.generate_button.click()
    assert lab.trial is not None and lab.trial.params['seeds'] == list(spec.seeds()['id'][:3]) and lab.trial.params['temperature'] == 0.5
    assert lab.trial.params['judge'] is True and 'judge_overall' in lab.trial.table
    lab.keep_a.click()
    lab.template_box.value = lab.default_template + '\nKeep every user message under 12 words.'
    lab.generate_button.click()
    lab.keep_b.click()
    cmp = lab.comparison()
    assert list(cmp.columns) == ['A: v1', 'B: v2'] and cmp.loc['template_id', 'A: v1'] != cmp.loc['template_id', 'B: v2']
    assert 'Keep every user message' in lab.compare_view.value
    lab.accept_button.click()
    assert len(lab.dataset) == int((lab.trial.table['valid'] == True).sum()) and 'accepted' in lab.status.value
    lab.accept_button.click()  # accepting twice adds nothing
    assert len(lab.dataset) == len(accept_trial(lab.trial, lab.dataset))
    # a bad seed id is reported in the status line, not raised into the notebook
    lab.seed_select.options = [('bogus', 'nope')]
    lab.seed_select.value = ('nope',)
    assert lab.generate() is None and 'nope' in lab.status.value


def test_widget_escapes_model_text(tmp_path, monkeypatch):
    monkeypatch.setenv('SB_TEST_KEY', SECRET)
    evil = "<script>alert('x')</script>"

    def r(body):
        if any(k.endswith('_score') for k in _schema_props(body)):
            return responder(body)
        return json.dumps(
            {
                'examples': [
                    {
                        'messages': [
                            {'role': 'user', 'content': evil + ' add task'},
                            {'role': 'assistant', 'content': "Created task: 'X' | Priority: low | Due: none"},
                        ]
                    }
                ]
            }
        )

    from synthbench.spec import load_spec
    from synthbench.llm.engine import LLM
    from synthbench.ui.promptlab import PromptLab

    with FakeOpenAIServer(responder=r) as s:
        llm = LLM(model='fake-model', base_url=s.base_url, api_key='test', cache_dir=tmp_path, progress=False)
        lab = PromptLab(load_spec(REPO / 'seeds' / 'task_api'), llm)
        lab.n.value = 5
        lab.generate_button.click()
    assert lab.trial is not None and len(lab.trial.table)
    assert '<script>' not in lab.view.value and '&lt;script&gt;' in lab.view.value
