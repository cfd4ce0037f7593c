"End-to-end tests of the scripted capable teacher (synthbench.testing) driving the real pipeline."

import json, os, re, signal, socket, subprocess, sys, time
from collections import Counter
from pathlib import Path
import pandas as pd
import pytest

from synthbench.testing import ScriptedTeacher, load_records, truth_of, WEEKDAYS
from synthbench.llm.engine import LLM
from synthbench.spec import load_spec
from synthbench.core import seeds_path

KEY = 'sk-' + 'test'


def _llm(t, tmp_path, **kw):
    return LLM(model='gpt-4o-mini', base_url=t.base_url, api_key=KEY, cache_dir=tmp_path, progress=False, **kw)


@pytest.fixture(scope='module')
def task_api_run(tmp_path_factory):
    from synthbench.stages.generate import generate

    spec = load_spec(seeds_path('task_api'))
    with ScriptedTeacher('task_api', defect_rate=0.2, seed=0) as t:
        t0 = time.time()
        df = generate(spec, n=200, llm=_llm(t, tmp_path_factory.mktemp('c')), k=10)
        took = time.time() - t0
        yield t, spec, df, took


def test_generate_defect_share_and_coverage(task_api_run):
    t, spec, df, took = task_api_run
    recs = t.records
    assert len(recs) >= 200
    share = recs['defect'].notna().mean()
    assert 0.13 <= share <= 0.27, share
    assert set(recs['defect'].dropna()) == {'near_copy', 'broken_format', 'off_task', 'wrong_answer'}
    truth = t.truth(df)
    assert (truth != 'unknown').all()
    assert set(df['category']) == set(spec.axes['category'])
    assert 0.1 <= truth.notna().mean() <= 0.3


def test_clean_rows_valid_and_weekdays_right(task_api_run):
    from synthbench.stages.validate import validate

    t, spec, df, _ = task_api_run
    truth = t.truth(df)
    clean = df[truth.isna().values]
    v = validate(clean.copy(), spec)
    assert v['valid'].astype(bool).all(), v.loc[~v['valid'].astype(bool), 'invalid_reason'].head().tolist()
    for msgs in clean['messages']:
        for m in msgs:
            if m['role'] != 'assistant':
                continue
            for y, mo, d, wd in re.findall(r'(\d{4})-(\d{2})-(\d{2}) \((\w+)\)', m['content']):
                if 'not a valid date' in m['content']:
                    continue
                assert WEEKDAYS[pd.Timestamp(int(y), int(mo), int(d)).weekday()] == wd, m['content']
    broken = df[(truth == 'broken_format').values]
    assert len(broken) and not validate(broken.copy(), spec)['valid'].astype(bool).any()


def test_clean_rows_are_not_near_duplicates(task_api_run):
    from synthbench.stages.dedup import dedup

    t, spec, df, _ = task_api_run
    truth = t.truth(df)
    clean = df[truth.isna().values].reset_index(drop=True)
    d = dedup(clean, methods='minhash', roles=['user', 'assistant'], progress=False)
    assert (d['dup_of'] != '').mean() < 0.05
    copies = df[(truth == 'near_copy').values]
    pool = pd.concat([clean, spec.seeds(), copies], ignore_index=True)
    both = dedup(pool, methods=['exact', 'minhash'], roles=['user', 'assistant'], progress=False)
    assert (both.tail(len(copies))['dup_of'] != '').mean() > 0.6
    from synthbench.stages.dedup import shingles

    recs = t.records
    by = dict(zip(recs['key'], recs['messages']))
    sims = []
    for r in recs[recs['defect'] == 'near_copy'].to_dict('records'):
        if r['source_key'] not in by:
            continue
        a = set(shingles(' '.join(m['content'] for m in r['messages']), 'char'))
        b = set(shingles(' '.join(m['content'] for m in by[r['source_key']]), 'char'))
        sims.append(len(a & b) / len(a | b))
    assert sims and sum(x >= 0.7 for x in sims) / len(sims) > 0.8


def test_judge_separates_clean_from_wrong(task_api_run, tmp_path):
    from synthbench.stages.judge import judge

    t, spec, df, _ = task_api_run
    truth = t.truth(df)
    sub = df[truth.isin([None, 'wrong_answer', 'off_task']).values | truth.isna().values].copy()
    sub['valid'] = True
    j = judge(sub, llm=_llm(t, tmp_path), spec=spec)
    tr = t.truth(j)
    assert j.loc[tr.isna().values, 'judge_pass'].mean() > 0.95
    assert j.loc[(tr == 'wrong_answer').values, 'judge_pass'].mean() < 0.05
    assert j.loc[(tr == 'off_task').values, 'judge_pass'].mean() < 0.05


def test_seeds_judged_good(tmp_path):
    from synthbench.stages.judge import judge

    spec = load_spec(seeds_path('task_api'))
    with ScriptedTeacher('task_api') as t:
        seeds = spec.seeds()
        assert set(t.truth(seeds)) == {'seed'}
        j = judge(seeds, llm=_llm(t, tmp_path), spec=spec)
        assert j['judge_pass'].all()


def test_support_tickets_and_policy(tmp_path):
    from synthbench.stages.generate import generate
    from synthbench.stages.validate import validate

    for task in ('support_tickets', 'policy_qa'):
        spec = load_spec(seeds_path(task))
        with ScriptedTeacher(task, defect_rate=0.2, seed=1) as t:
            df = generate(spec, n=60, llm=_llm(t, tmp_path / task), k=10)
            tr = t.truth(df)
            assert (tr != 'unknown').all()
            clean = df[tr.isna().values]
            assert validate(clean.copy(), spec)['valid'].astype(bool).all()
            col = 'label' if task == 'support_tickets' else 'category'
            assert set(clean[col]) == set(spec.axes['label' if task == 'support_tickets' else 'category'])


def test_faults_injected_at_rates(tmp_path):
    from synthbench.stages.generate import plan_generation, ChatExamples

    spec = load_spec(seeds_path('task_api'))
    plan = plan_generation(spec, 240, k=1)
    with ScriptedTeacher('task_api', faults={'429': 0.1, '500': 0.05, 'truncated': 0.05, 'bad_json': 0.05}, retry_after=0.01) as t:
        llm = _llm(t, tmp_path, max_retries=8)
        res = llm.chat_many([b.messages for b in plan.batches], response_format=ChatExamples)
        n = t.stats['requests']
        f = t.stats['faults']
        assert abs(f['429'] / n - 0.10) < 0.05 and abs(f['500'] / n - 0.05) < 0.035
        assert abs(f['truncated'] / n - 0.05) < 0.035 and abs(f['bad_json'] / n - 0.05) < 0.035
        assert sum(r.error is None for r in res) / len(res) > 0.95  # retries and repairs recover nearly all


def test_fail_judge_and_401(tmp_path):
    from synthbench.stages.judge import judge

    spec = load_spec(seeds_path('task_api'))
    with ScriptedTeacher('task_api', fail='judge') as t:
        j = judge(spec.seeds().head(3), llm=_llm(t, tmp_path, max_retries=0), spec=spec)
        assert (j['judge_error'] != '').all()
    with ScriptedTeacher('task_api', auth_key='right-key') as t:
        r = _llm(t, tmp_path / 'x').chat('hi')
        assert r.error and '401' in r.error
        assert t.stats['unauthorized'] >= 1


def _non_loopback_ip():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(('10.255.255.255', 1))
        ip = s.getsockname()[0]
    except OSError:
        ip = None
    finally:
        s.close()
    return ip if ip and not ip.startswith('127.') else None


def test_loopback_only():
    ip = _non_loopback_ip()
    if ip is None:
        pytest.skip('this machine has no non-loopback address')
    with ScriptedTeacher('task_api') as t:
        with pytest.raises(OSError):
            socket.create_connection((ip, t.port), timeout=2).close()


def test_cli_ready_and_records(tmp_path):
    rec = tmp_path / 'records.jsonl'
    env = {**os.environ, 'PYTHONPATH': str(Path(__file__).resolve().parents[1])}
    p = subprocess.Popen(
        [sys.executable, '-m', 'synthbench.testing', '--task', str(seeds_path('support_tickets')), '--port', '0', '--records', str(rec)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = p.stdout.readline().strip()
        assert re.fullmatch(r'READY http://127\.0\.0\.1:\d+/v1', line), line
        from synthbench.stages.generate import generate

        spec = load_spec(seeds_path('support_tickets'))
        llm = LLM(model='gpt-4o-mini', base_url=line.split()[1], api_key=KEY, cache_dir=tmp_path, progress=False)
        df = generate(spec, n=20, llm=llm, k=10)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    recs = load_records(rec)
    assert len(recs) >= 20
    assert (truth_of(recs, df) != 'unknown').all()


def test_augment_evol_and_calibration(tmp_path):
    from synthbench.stages import augment as A
    from synthbench.stages.evol import evolve
    from synthbench.stages.judge import calibrate

    for task in ('task_api', 'support_tickets'):
        spec = load_spec(seeds_path(task))
        seeds = spec.seeds()
        with ScriptedTeacher(task) as t:
            llm = _llm(t, tmp_path / task)
            p = A.paraphrase(seeds.head(4), llm, n=2, spec=spec)
            assert len(p) == 8 and (p['valid'] == True).all()
            assert len(A.back_translate(seeds.head(2), llm, spec=spec)) == 2
            ev = evolve(seeds.head(3), spec, llm, rounds=1)
            assert len(ev) == 3
            cal = calibrate(seeds, llm, spec=spec)
            assert cal.catch_rate >= 0.9 and cal.false_rejection_rate <= 0.05


def test_json_object_mode_and_repair():
    from synthbench.llm.engine import _Format
    from synthbench.stages.generate import plan_generation, ChatExamples

    spec = load_spec(seeds_path('task_api'))
    msgs = plan_generation(spec, 20).batches[0].messages
    t = ScriptedTeacher('task_api')
    jm, rf = _Format(ChatExamples).json_mode(msgs)
    st, _, payload = t.respond({'model': 'm', 'messages': jm, 'response_format': rf})
    ChatExamples.model_validate_json(payload['choices'][0]['message']['content'])
    repair = msgs + [
        {'role': 'assistant', 'content': '{"examples": ['},
        {'role': 'user', 'content': 'That reply is not valid: x. Reply with only the corrected JSON object.'},
    ]
    st, _, payload = t.respond(
        {
            'model': 'm',
            'messages': repair,
            'response_format': {'type': 'json_schema', 'json_schema': {'name': 'ChatExamples', 'schema': ChatExamples.model_json_schema()}},
        }
    )
    assert len(ChatExamples.model_validate_json(payload['choices'][0]['message']['content']).examples) >= 1


def test_concurrency_and_usage(tmp_path):
    with ScriptedTeacher('task_api', latency=0.2) as t:
        llm = _llm(t, tmp_path)
        t0 = time.time()
        res = llm.chat_many([f'Add task: buy item {i}' for i in range(128)])
        assert time.time() - t0 < 3 and t.stats['max_in_flight'] >= 32
        assert all(r.error is None and r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0 for r in res)
        assert llm.stats['usd'] > 0


def test_truth_of_alpaca_export(tmp_path):
    from synthbench.stages.generate import generate
    from synthbench.formats import to_alpaca

    spec = load_spec(seeds_path('policy_qa'))
    with ScriptedTeacher('policy_qa', seed=3) as t:
        df = generate(spec, n=30, llm=_llm(t, tmp_path), k=10)
        al = pd.DataFrame([to_alpaca(m) for m in df['messages']])
        assert 'instruction' in al and 'messages' not in al
        assert list(t.truth(al)) == list(t.truth(df))
