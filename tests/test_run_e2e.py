"""The whole run is the unit under test: `synthbench run` against the scripted capable teacher (planted defects of
known kinds), counting what survived -- and every way a run can fail ends with a non-zero exit and one line."""

import contextlib, io, json, socket
from pathlib import Path
import pandas as pd, pytest
from synthbench.cli import main
from synthbench.testing import ScriptedTeacher

REPO = Path(__file__).resolve().parents[1]
KEY = 'sk-' + 'e2e-0123456789abcdef'  # a fake key, split so secret scanners don't flag it


def write_pipeline(tmp_path, task, llm: str, stages: str, name='e2e', llms: str = '') -> Path:
    p = tmp_path / f'{name}.yaml'
    p.write_text(f"name: {name}\ntask: {REPO / 'seeds' / task}\nruns_dir: runs\nseed: 3\nllm: {llm}\n{llms}stages:\n{stages}")
    return p


def llm_line(base_url, **kw) -> str:
    extra = ''.join(f', {k}: {v}' for k, v in kw.items())
    return f'{{model: gpt-4o-mini, base_url: "{base_url}", api_key_env: SB_E2E_KEY, progress: false, max_retries: 3{extra}}}'


FULL = """  - generate: {n: N}
  - validate
  - judge: {threshold: 3.5}
  - dedup
  - filter
  - export
"""


def run_cli(p) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(['run', str(p), '--quiet'])
    return code, out.getvalue(), err.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv('SB_E2E_KEY', KEY)
    monkeypatch.setenv('SYNTHBENCH_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.chdir(tmp_path)


def figures(teacher, run_dir: Path, spec) -> dict:
    "Yield and leak figures of a finished run, from the teacher's ground truth."
    from synthbench.formats import load_table

    gen = load_table(run_dir / '01_generate.parquet')
    out = load_table(run_dir / 'dataset.parquet')
    tg, to = teacher.truth(gen), teacher.truth(out)
    exported_gen = to[out['source'].eq('generated').values]
    clean_gen = int(tg.isna().sum())
    f = {
        'generated': len(gen),
        'clean generated': clean_gen,
        'exported': len(out),
        'clean exported': int(exported_gen.isna().sum()),
        'defects exported': int(exported_gen.notna().sum()),
        'defects exported by kind': exported_gen.dropna().value_counts().to_dict(),
    }
    f['yield'] = f['clean exported'] / max(clean_gen, 1)
    f['leak'] = f['defects exported'] / max(len(out), 1)
    from synthbench.stages.dedup import minhash_pairs
    from synthbench.core import example_text

    texts = [
        example_text({**r, 'messages': [m for m in r['messages'] if m['role'] != 'system']} if r.get('messages') is not None else r)
        for r in out.to_dict('records')
    ]
    i, j, sim, _ = minhash_pairs(texts, threshold=0.8)
    f['near-dup share'] = len({int(x) for x in j}) / max(len(out), 1)
    axis = 'label' if spec.task_type == 'classification' else 'category'
    targets = (spec.axes or {}).get('category') or {l: 1 / len(spec.labels) for l in spec.labels or []}
    shares = out[out['source'].eq('generated')][axis].value_counts(normalize=True) if len(out) else pd.Series(dtype=float)
    f['category share / target (min)'] = min((shares.get(c, 0.0) / t for c, t in targets.items() if t), default=1.0)
    return f


@pytest.mark.slow
@pytest.mark.parametrize('task', ['task_api', 'support_tickets', 'policy_qa'])
def test_capable_teacher_run_keeps_good_drops_bad(tmp_path, task):
    from synthbench.spec import load_spec

    spec = load_spec(REPO / 'seeds' / task)
    with ScriptedTeacher(REPO / 'seeds' / task, defect_rate=0.2, seed=1) as t:
        p = write_pipeline(tmp_path, task, llm_line(t.base_url), FULL.replace('N', '200'))
        code, out, err = run_cli(p)
        assert code == 0, err[-2000:]
        f = figures(t, tmp_path / 'runs' / 'e2e', spec)
    print(task, json.dumps(f))
    assert f['generated'] >= 200
    assert f['yield'] >= 0.90, f
    assert f['leak'] <= 0.02, f
    assert f['near-dup share'] <= 0.02, f
    assert f['category share / target (min)'] >= 0.5, f


def assert_one_line_failure(code, err, *words):
    assert code == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith('synthbench run: failed: stage '), last
    for w in words:
        assert w.lower() in last.lower(), (w, last)
    assert 'Traceback' not in err
    return last


def test_wrong_key_fails_loudly(tmp_path, monkeypatch):
    with ScriptedTeacher(REPO / 'seeds' / 'task_api', auth_key='sk-' + 'the-right-one') as t:
        p = write_pipeline(tmp_path, 'task_api', llm_line(t.base_url), FULL.replace('N', '12'))
        code, out, err = run_cli(p)
    last = assert_one_line_failure(code, err, 'generate', 'auth', '401')
    assert not (tmp_path / 'runs' / 'e2e' / 'dataset.jsonl').exists()
    m = json.loads((tmp_path / 'runs' / 'e2e' / 'manifest.json').read_text())
    assert m['status'] == 'failed' and m['not_run'] == ['validate', 'judge', 'dedup', 'filter', 'export']
    for f in (tmp_path / 'runs').rglob('*'):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f


def test_unreachable_judge_is_a_failure_not_a_rejection(tmp_path):
    dead = f'http://127.0.0.1:{free_port()}/v1'
    with ScriptedTeacher(REPO / 'seeds' / 'task_api') as t:
        p = write_pipeline(
            tmp_path,
            'task_api',
            llm_line(t.base_url),
            FULL.replace('N', '12').replace('judge: {threshold: 3.5}', 'judge: {llm: judge, threshold: 3.5}'),
            llms=f'llms: {{judge: {{model: gpt-4o, base_url: "{dead}", max_retries: 1}}}}\n',
        )
        code, out, err = run_cli(p)
    assert_one_line_failure(code, err, 'judge', 'network')
    m = json.loads((tmp_path / 'runs' / 'e2e' / 'manifest.json').read_text())
    st = {s['name']: s for s in m['stages']}
    assert st['judge']['status'] == 'failed' and 'filter' not in st and not (tmp_path / 'runs' / 'e2e' / 'dataset.jsonl').exists()


def test_judge_inherits_the_private_endpoint(tmp_path):
    with ScriptedTeacher(REPO / 'seeds' / 'task_api') as t:
        p = write_pipeline(
            tmp_path,
            'task_api',
            llm_line(t.base_url),
            FULL.replace('N', '12').replace('judge: {threshold: 3.5}', 'judge: {llm: judge}'),
            llms='llms: {judge: {model: gpt-4o}}\n',
        )
        code, out, err = run_cli(p)
        assert code == 0, err[-2000:]
        m = json.loads((tmp_path / 'runs' / 'e2e' / 'manifest.json').read_text())
    assert m['endpoints']['judge'] == t.base_url
    assert m['llms']['judge']['base_url'] == t.base_url and m['llms']['judge']['model'] == 'gpt-4o'


def test_budget_out_is_named(tmp_path):
    with ScriptedTeacher(REPO / 'seeds' / 'task_api') as t:
        p = write_pipeline(tmp_path, 'task_api', llm_line(t.base_url, budget_usd=0.0005), FULL.replace('N', '100'))
        code, out, err = run_cli(p)
    assert_one_line_failure(code, err, 'generate', 'budget')


def test_all_parse_failures_fail_the_stage(tmp_path):
    with ScriptedTeacher(REPO / 'seeds' / 'task_api', faults={'bad_json': 1.0}) as t:
        p = write_pipeline(tmp_path, 'task_api', llm_line(t.base_url), FULL.replace('N', '12'))
        code, out, err = run_cli(p)
    assert_one_line_failure(code, err, 'generate', 'parse')


def test_misspelled_parameters_are_refused_before_any_request(tmp_path):
    with ScriptedTeacher(REPO / 'seeds' / 'task_api') as t:
        for stages, llm_kw, words in [
            (FULL.replace('N', '12').replace('  - dedup\n', '  - dedup: {method: exact}\n'), {}, ["'method'", "'methods'", 'line 10']),
            (FULL.replace('N', '12').replace('  - dedup\n', '  - dedup: {bogus_param: 1}\n'), {}, ["'bogus_param'", 'line 10']),
            (FULL.replace('N', '12'), {'temprature': 0.5}, ["'temprature'", "'temperature'", 'line 5']),
        ]:
            p = write_pipeline(tmp_path, 'task_api', llm_line(t.base_url, **llm_kw), stages)
            code, out, err = run_cli(p)
            assert code == 2, err
            for w in words:
                assert w in err, (w, err)
        assert t.stats['requests'] == 0
