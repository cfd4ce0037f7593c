"LLM-as-judge against the fake OpenAI server: calibration figures, filtering, failed calls, CLI."

import json, re, subprocess, sys, warnings
import numpy as np
import pandas as pd
import pytest
from fake_openai import FakeOpenAIServer
from synthbench.core import make_table, response_text
from synthbench.stages.judge import (
    CORRUPTIONS,
    Criterion,
    apply_threshold,
    calibrate,
    calibration_set,
    cohens_kappa,
    example_block,
    judge,
    judge_summary,
    known_good,
    suggest_threshold,
)
from synthbench.llm.engine import LLM, ChatModel
from synthbench.spec import TaskSpec
from synthbench.ui.review import record_review

CRITS = ['relevance', 'accuracy', 'clarity', 'format']


def seeds(n=6):
    return make_table(
        [
            {
                'messages': [
                    {'role': 'user', 'content': f'Add a task: {w}'},
                    {'role': 'assistant', 'content': f'Created the task "{w.capitalize()}" in your inbox.'},
                ],
                'category': 'create',
                'model': 'gen-model',
            }
            for w in [
                'buy milk',
                'call the plumber',
                'renew passport',
                'book dentist',
                'pay rent',
                'water plants',
                'email the landlord',
                'fix the bike',
            ][:n]
        ],
        source='seed',
    )


def block_of(body):
    "The <example> block of the judge request (also found in repair requests)."
    for m in body['messages']:
        x = re.search(r'<example>.*?</example>', m.get('content') or '', re.S)
        if x:
            return x.group(0)
    raise AssertionError('no example in the judge request')


def answer(scores, summary='ok'):
    d = {}
    for c in CRITS:
        d[f'{c}_reason'] = f'{c} reason'
        d[f'{c}_score'] = scores.get(c, 5)
    return json.dumps({**d, 'summary': summary})


def answer_for(body, scores):
    "A judge answer with every criterion the request's schema asks for (score 5 unless in `scores`)."
    props = body['response_format']['json_schema']['schema']['properties']
    names = [k[:-6] for k in props if k.endswith('_score')]
    d = {k: v for n in names for k, v in ((f'{n}_reason', f'{n} reason'), (f'{n}_score', scores.get(n, 5)))}
    return json.dumps({**d, 'summary': 'ok'})


def rule_responder(score_of):
    "Responder scoring each example by `score_of(block) -> dict of criterion scores`."
    return lambda body: answer_for(body, score_of(block_of(body)))


def llm_for(srv, tmp_path, **kw):
    return LLM(model='judge-model', base_url=srv.base_url, api_key='test', cache_dir=tmp_path / 'cache', progress=False, **kw)


def test_calibration_confusion_catch_rate_kappa_and_threshold(tmp_path):
    cal_set = calibration_set(seeds(6), seed=3)
    assert (cal_set.calib_expected == 'bad').sum() == 6 and set(cal_set.calib_kind) == {'good', *CORRUPTIONS}
    kinds = dict(zip(cal_set.id, cal_set.calib_kind))
    by_block = {example_block(r): r['calib_kind'] for r in cal_set.to_dict('records')}
    good_ids = cal_set.id[cal_set.calib_kind == 'good'].tolist()
    # the rule judge: misses 'truncated' (scores it 4), catches the other kinds with accuracy 1 (overall 4.0: only the
    # min_score floor rejects them), and gives one known-good row 3s (a false rejection at threshold 3.5)
    fr_block = example_block(cal_set.set_index('id').loc[good_ids[0]].to_dict())

    def score_of(block):
        k = by_block[block]
        if block == fr_block:
            return {c: 3 for c in CRITS}
        if k == 'good':
            return {}
        if k == 'truncated':
            return {c: 4 for c in CRITS}
        return {'accuracy': 1}

    with FakeOpenAIServer(responder=rule_responder(score_of)) as srv:
        cal = calibrate(cal_set, llm_for(srv, tmp_path), threshold=3.5)
        n_req = len(srv.requests)
    assert n_req == 12
    assert cal.confusion.values.tolist() == [[5, 1], [1, 5]]
    assert cal.catch_rate == pytest.approx(5 / 6) and cal.ok
    assert (cal.false_rejections, cal.false_rejection_rate) == (1, pytest.approx(1 / 6))
    assert cal.per_kind.loc['truncated', 'caught'] == 0 and cal.per_kind.loc['off_task', 'caught'] == 1
    # kappa by hand: po = 10/12; judge rejects 6/12, truth bad 6/12 -> pe = .5 -> kappa = (10/12 - .5) / .5 = 2/3
    assert cal.kappa == pytest.approx(2 / 3)
    assert cal.kappa_human is None and cal.n_errors == 0
    # the floor alone catches 5/6 >= 80% with no false rejection, so the lowest threshold (1.0, i.e. floor only) wins;
    # catching all 6 needs a threshold above 4.0 (the truncated row): 4.25 rejects it and the 3s row, keeps the 5s
    assert cal.suggested_threshold == 1.0
    assert suggest_threshold(cal.sweep, target_catch=1.0) == 4.25
    row = cal.sweep.set_index('threshold').loc[4.25]
    assert (row.caught, row.false_rejections) == (6, 1)
    html = cal._repr_html_()
    assert 'caught 83%' in html and 'suggested threshold 1.0' in html


def test_weak_judge_warns_and_summary_shows_calibration(tmp_path):
    cal_set = calibration_set(seeds(4), kinds=['off_task', 'truncated', 'copied_prompt', 'contradictory'], seed=0)
    with FakeOpenAIServer(responder=rule_responder(lambda b: {})) as srv:  # a judge that passes everything
        llm = llm_for(srv, tmp_path)
        with pytest.warns(UserWarning, match=r'caught 0% of known-bad'):
            cal = calibrate(cal_set, llm)
        assert cal.catch_rate == 0 and not cal.ok and cal.confusion.values.tolist() == [[4, 0], [4, 0]]
        with pytest.warns(UserWarning, match='do not trust this filter yet'):
            out = judge(seeds(4), llm, calibration=cal, threshold=3.5)
    s = judge_summary(out)
    assert (s.n, s.passed, s.rejected, s.errors) == (4, 4, 0, 0)
    h = s._repr_html_()
    assert 'calibration' in h and 'caught 0%' in h and 'do not trust' in h


def test_judge_columns_threshold_and_bottom_pct(tmp_path):
    df = seeds(8)
    ranks = {example_block(r): i for i, r in enumerate(df.to_dict('records'))}

    # row i gets overall 1 + 0.5 * i (rows 0..7: 1.0 .. 4.5), criteria varied
    def score_of(block):
        i = ranks[block]
        s = 1 + i // 2
        return {'relevance': s, 'accuracy': s, 'clarity': s + i % 2 if s < 5 else 5, 'format': s + i % 2 if s < 5 else 5}

    with FakeOpenAIServer(responder=rule_responder(score_of)) as srv:
        llm = llm_for(srv, tmp_path)
        out = judge(df, llm, threshold=3.0, min_score=None)
        for c in CRITS:
            assert out[f'judge_{c}'].dtype == 'Int64' and (out[f'judge_{c}_reason'] == f'{c} reason').all()
        assert out.judge_overall.tolist() == [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]
        assert out.judge_pass.tolist() == [False] * 4 + [True] * 4
        assert out.judge_reason[0].startswith('rejected: overall 1.00 < threshold 3') and out.judge_reason[7].startswith(
            'pass: overall 4.50'
        )
        assert (out.judge_model == 'judge-model').all() and (out.judge_error == '').all() and len(out) == 8
        bottom = judge(df, llm, bottom_pct=25, min_score=None)
        assert len(srv.requests) == 8  # the second run is served from the cache
    assert bottom.judge_pass.tolist() == [False, False] + [True] * 6
    assert 'bottom 25%' in bottom.judge_reason[1]
    # re-deciding from stored scores: no calls, same table, floor on single criteria
    re3 = apply_threshold(out, threshold=None, min_score=3)
    assert re3.judge_pass.tolist() == [False] * 4 + [True] * 4
    assert 'a criterion scored 2 < min_score 3' in re3.judge_reason[3]
    assert judge(df, llm, threshold=3.0, min_score=None, drop=True).id.tolist() == df.id[4:].tolist()
    s = judge_summary(bottom)
    assert s.scores.loc['relevance', ['1', '2', '3', '4']].tolist() == [2, 2, 2, 2]
    assert 'bottom 25%' in s._repr_html_()


def test_failed_judge_calls_are_recorded_never_passed(tmp_path):
    df = seeds(5)
    blocks = [example_block(r) for r in df.to_dict('records')]

    def responder(body):
        b = block_of(body)
        if b == blocks[1]:
            return {'status': 400, 'error': 'context length exceeded'}
        if b == blocks[2]:
            return 'Sure! The example looks great.'  # not JSON, also after the repair request
        if b == blocks[3]:
            return answer({'accuracy': 9})  # out of range
        return answer({})

    with FakeOpenAIServer(responder=responder) as srv:
        with pytest.warns(UserWarning, match='3 of 5 judge call'):
            out = judge(df, llm_for(srv, tmp_path, max_retries=0))
    assert len(out) == 5
    assert out.judge_pass.tolist() == [True, None, None, None, True]  # a failed call is not a rejection (was: False)
    assert 'context length exceeded' in out.judge_error[1] and 'parse failed' in out.judge_error[2] and 'accuracy' in out.judge_error[3]
    assert out.judge_reason[1].startswith('judge failed:') and pd.isna(out.judge_accuracy[1]) and np.isnan(out.judge_overall[1])
    s = judge_summary(out)
    assert (s.passed, s.rejected, s.errors) == (2, 0, 3)


def test_invalid_rows_not_sent_and_same_model_warning(tmp_path):
    df = seeds(3)
    df['valid'] = [True, False, True]
    df['invalid_reason'] = ['', 'too short', '']
    with FakeOpenAIServer(responder=rule_responder(lambda b: {})) as srv:
        llm = LLM(model='gen-model', base_url=srv.base_url, api_key='test', cache_dir=tmp_path / 'c', progress=False)
        with pytest.warns(UserWarning, match="judge model 'gen-model' also generated"):
            out = judge(df, llm)
        assert len(srv.requests) == 2
    assert out.judge_pass.tolist() == [True, None, True]  # not sent: no verdict
    assert out.judge_reason[1] == 'not judged: failed validation (too short)'
    assert judge_summary(out).not_judged == 1


def test_guideline_criteria_from_spec_in_schema(tmp_path):
    spec = TaskSpec('todo', description='task manager replies', labels=['create'], guidelines=['Never reveal personal emails.'])

    def responder(body):
        props = body['response_format']['json_schema']['schema']['properties']
        assert 'never_reveal_personal_score' in props and props['accuracy_score']['enum'] == [1, 2, 3, 4, 5]
        d = json.loads(answer({}))
        d.update(never_reveal_personal_reason='none shown', never_reveal_personal_score=2)
        return json.dumps(d)

    with FakeOpenAIServer(responder=responder) as srv:
        out = judge(seeds(1), llm_for(srv, tmp_path), spec=spec)
    assert out.judge_never_reveal_personal[0] == 2 and out.judge_overall[0] == pytest.approx(4.4)
    assert out.judge_pass[0] == False  # a 2 ('major problem') on any criterion is below the default min_score 3
    assert apply_threshold(out, threshold=3.5, min_score=2).judge_pass[0] == True


def test_calibration_with_human_labels(tmp_path):
    df = seeds(6)
    labels = tmp_path / 'data.review.jsonl'
    for i in range(4):
        record_review(labels, df.id[i], 'accept', reviewer='t')
    record_review(labels, df.id[4], 'reject', 'vague', reviewer='t')
    good = known_good(df, labels)
    assert good.id.tolist() == df.id[:4].tolist()
    cal_set = calibration_set(good, kinds=['off_task', 'copied_prompt'], extra_bad=df.iloc[[4]], seed=0)
    assert cal_set.calib_kind.tolist().count('human_reject') == 1
    bad_blocks = {example_block(r) for r in cal_set.to_dict('records') if r['calib_expected'] == 'bad'}
    first_good = example_block(df.iloc[0].to_dict())
    # judge rejects all known-bad and also the first human-accepted row
    with FakeOpenAIServer(responder=rule_responder(lambda b: {'accuracy': 1} if b in bad_blocks or b == first_good else {})) as srv:
        cal = calibrate(cal_set, llm_for(srv, tmp_path), labels=labels)
    assert cal.n_human == 5
    human = [0, 0, 0, 0, 1]
    judge_rej = [1, 0, 0, 0, 1]
    assert cal.kappa_human == pytest.approx(cohens_kappa(human, judge_rej)) and cal.kappa_human == pytest.approx(0.5454545, abs=1e-6)
    assert 'on 5 human-labelled rows' in cal._repr_html_()


def _cli(*args, env_extra=None):
    import os

    env = {**os.environ, 'OPENAI_API_KEY': 'test-key', 'HF_HUB_OFFLINE': '1', **(env_extra or {})}
    env.pop('OPENAI_BASE_URL', None)
    return subprocess.run(['synthbench', 'judge', *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def test_cli_end_to_end(tmp_path):
    df = seeds(4)
    src = tmp_path / 'data.jsonl'
    recs = [{'messages': m, 'source': 'seed'} for m in df.messages] + [
        {
            'messages': [{'role': 'user', 'content': 'Add a task: sleep'}, {'role': 'assistant', 'content': 'Add a task: sleep'}],
            'source': 'generated',
        }
    ]
    src.write_text(''.join(json.dumps(r) + '\n' for r in recs))

    def score_of(block):
        u, a = re.search(r'\[user\]\n(.*)\n\[assistant\]\n(.*)\n</example>', block, re.S).groups()
        ok = a == f'Created the task "{u.split(": ", 1)[1].capitalize()}" in your inbox.'  # the seeds' exact pattern
        return {} if ok else {'relevance': 1, 'accuracy': 1}

    with FakeOpenAIServer(responder=rule_responder(score_of)) as srv:
        out = tmp_path / 'judged.parquet'
        r = _cli(
            src,
            '-o',
            out,
            '--model',
            'judge-model',
            '--base-url',
            srv.base_url,
            '--threshold',
            '3.5',
            '--calibrate',
            '--cache-dir',
            tmp_path / 'c',
        )
        assert r.returncode == 0, r.stderr
        assert 'calibration: 4 known good, 6 known bad; caught 100%' in r.stdout and 'suggested threshold' in r.stdout
        assert 'judged 5 rows' in r.stdout and '4 passed, 1 rejected' in r.stdout
        assert 'test-key' not in r.stdout + r.stderr
        from synthbench.formats import load_table

        t = load_table(out)
        assert len(t) == 5 and t.judge_pass.tolist() == [True] * 4 + [False] and t.judge_accuracy.tolist()[-1] == 1
        r = _cli(
            src,
            '-o',
            tmp_path / 'kept.jsonl',
            '--base-url',
            srv.base_url,
            '--model',
            'judge-model',
            '--bottom-pct',
            '20',
            '--drop',
            '--cache-dir',
            tmp_path / 'c',
        )
        assert r.returncode == 0, r.stderr
        assert len((tmp_path / 'kept.jsonl').read_text().splitlines()) == 4
    r = _cli(tmp_path / 'missing.jsonl', '-o', tmp_path / 'x.jsonl', '--model', 'm', '--base-url', 'http://127.0.0.1:9/v1')
    assert r.returncode == 2 and 'missing.jsonl does not exist' in r.stderr
    r = _cli(src, '-o', tmp_path / 'x.jsonl', '--threshold', '3', '--bottom-pct', '10')
    assert r.returncode == 2 and 'not allowed with' in r.stderr
    r = _cli('--help')
    assert r.returncode == 0 and 'OUT' in r.stdout and '--calibrate' in r.stdout


def test_summary_figure_and_reloaded_table(tmp_path):
    df = seeds(3)
    with FakeOpenAIServer(responder=rule_responder(lambda b: {'accuracy': 2})) as srv:
        out = judge(df, llm_for(srv, tmp_path))
    fig = judge_summary(out).figure()
    assert len(fig.data) == len(CRITS) + 1 and list(fig.data[1].y) == [0, 3, 0, 0, 0]
    from synthbench.formats import load_table, save_table

    save_table(out, tmp_path / 'j.parquet')
    back = load_table(tmp_path / 'j.parquet')  # attrs are gone: criteria come from the judge_* columns
    assert apply_threshold(back, threshold=4.5).judge_pass.tolist() == [False] * 3
    assert apply_threshold(back, threshold=4.0, min_score=2).judge_pass.tolist() == [True] * 3
    assert judge_summary(back).scores.index.tolist() == CRITS


@pytest.mark.slow
def test_local_model_judges_or_records_error(tmp_path):
    "The real embedded SmolLM2-135M: its scores mean nothing, but every row ends scored or with a judge_error, never silently passed."
    llm = LLM.local(cache_dir=tmp_path / 'c', progress=False)
    out = judge(seeds(1), llm, criteria=['relevance', 'accuracy'], max_tokens=200)
    r = out.iloc[0]
    assert r.judge_model
    if r.judge_error:
        assert not r.judge_pass and r.judge_reason.startswith('judge failed')
    else:
        assert 1 <= r.judge_relevance <= 5 and 1 <= r.judge_accuracy <= 5 and r.judge_overall == (r.judge_relevance + r.judge_accuracy) / 2


def test_classification_spec_calibration(tmp_path):
    from pathlib import Path
    from synthbench.spec import load_spec

    spec = load_spec(Path(__file__).parent.parent / 'seeds' / 'support_tickets')
    good = spec.seeds().head(6)
    cal_set = calibration_set(good, spec=spec, seed=0)
    bad = cal_set[cal_set.calib_expected == 'bad']
    assert sorted(bad.calib_kind) == sorted(CORRUPTIONS)
    wl = bad[bad.calib_kind == 'wrong_label'].iloc[0]
    parent = good.set_index('id').loc[wl.parent_id]
    assert wl.text == parent.text and wl.label != parent.label and wl.label in spec.labels
    truth = {(t, l) for t, l in zip(good.text, good.label)}

    def score_of(block):
        t, l = re.search(r'\[text\]\n(.*)\n\[label\]\n(.*)\n</example>', block, re.S).groups()
        return {} if (t, l) in truth else {'accuracy': 1}

    seen = []

    def responder(body):
        seen.append(body['messages'][1]['content'])
        return rule_responder(score_of)(body)

    with FakeOpenAIServer(responder=responder) as srv:
        cal = calibrate(cal_set, llm_for(srv, tmp_path), spec=spec)
    assert cal.catch_rate == 1 and cal.false_rejections == 0 and cal.kappa == 1
    assert 'Allowed labels: billing, shipping' in seen[0] and 'tickets_read_like' in seen[0]
    assert 'Label correctness' in seen[0]


# --- the stage contract and loud failures ---

from types import SimpleNamespace
from synthbench.llm.engine import ChatResult
from synthbench.run.stage import RunContext, check_params
from synthbench.stages.judge import judge_stage

HAS_KINDS = 'error_kind' in getattr(ChatResult, '__dataclass_fields__', {})  # the engine labels its errors (after the engine change)


def test_judge_stage_wrong_key_fails_never_rejects(tmp_path):
    df = seeds(4)
    with FakeOpenAIServer(responder=lambda b: {'status': 401, 'error': 'Incorrect API key provided'}) as srv:
        res = judge_stage(df, ctx=RunContext(llms={'main': llm_for(srv, tmp_path)}))
    assert res.status == 'failed' and res.reason.startswith('4 of 4 judge call(s) failed: HTTP 401'), res.reason
    if HAS_KINDS:
        assert res.error_kind == 'auth'
    t = res.table
    assert t.judge_pass.tolist() == [None] * 4 and t.judge_overall.isna().all() and t.judge_error.str.contains('401').all()
    assert res.report['rejected'] == 0 and res.report['errors'] == 4


def test_unparseable_judge_answers_are_parse_errors():
    # through the real engine: the teacher's `bad_json` fault answers every judge request in prose; the engine's repair
    # fails too, and the stage fails with the engine's parse error on every row
    from synthbench.testing import ScriptedTeacher, teacher_llm

    with ScriptedTeacher('task_api', faults={'bad_json': 1.0}) as t:
        res = judge_stage(seeds(3), ctx=RunContext(llms={'main': teacher_llm(t)}))
        assert t.stats['faults']['bad_json'] == t.stats['by_kind']['judge'] == 6  # 3 answers + 3 failed repairs
    assert (res.status, res.error_kind) == ('failed', 'parse') and res.reason.startswith('3 of 3 judge call(s) failed: parse failed'), (
        res.reason
    )
    assert res.table.judge_pass.tolist() == [None] * 3 and res.table.judge_error.str.contains('not valid JSON').all()

    # a client that is not the engine (no response_format parsing: a local model, a custom ChatModel) hands the judge
    # prose with no error; the judge's own parse catches it. The engine never returns such a result, so this stays a
    # minimal stand-in (it reads no prompt: the same prose for every call).
    class Chatty:  # answers in prose: no structure the judge can use
        model = 'chatty'

        def chat_many(self, msgs, **kw):
            return [SimpleNamespace(error=None, parsed=None, text='Looks great to me!', model='chatty') for _ in msgs]

        def chat(self, messages, **kw):
            return self.chat_many([messages])[0]

        def estimate(self, prompts, **kw):
            raise NotImplementedError('Chatty: never estimated')

    assert isinstance(Chatty(), ChatModel)  # a stand-in a stage accepts: every member of the protocol
    res = judge_stage(seeds(3), ctx=RunContext(llms={'main': Chatty()}))
    assert (res.status, res.error_kind) == ('failed', 'parse') and 'unusable judge answer' in res.reason
    assert res.table.judge_pass.tolist() == [None] * 3


def test_judge_stage_ok_report_and_params(tmp_path):
    df = seeds(4)
    with FakeOpenAIServer(responder=rule_responder(lambda b: {'accuracy': 1} if 'milk' in b else {})) as srv:
        res = judge_stage(df, ctx=RunContext(llms={'main': llm_for(srv, tmp_path)}), criteria=['accuracy', 'format'], max_tokens=200)
    assert res.status == 'ok' and res.table.attrs == {} and json.dumps(res.report)
    assert (res.report['passed'], res.report['rejected'], res.report['errors']) == (3, 1, 0)
    assert res.table.judge_pass.tolist() == [False, True, True, True]
    assert check_params(judge_stage, {'treshold': 3})[0][1].endswith("did you mean 'threshold'?")


def test_cli_judge_wrong_key_and_bad_output(tmp_path):
    src = tmp_path / 'data.jsonl'
    src.write_text(''.join(json.dumps({'messages': m}) + '\n' for m in seeds(3).messages))
    with FakeOpenAIServer(responder=lambda b: {'status': 401, 'error': 'Incorrect API key provided'}) as srv:
        r = _cli(src, '-o', tmp_path / 'out.txt', '--model', 'judge-model', '--base-url', srv.base_url, '--cache-dir', tmp_path / 'c')
        assert r.returncode == 2 and "cannot write the output as '.txt'" in r.stderr and len(srv.requests) == 0, r.stderr
        out = tmp_path / 'judged.parquet'
        r = _cli(src, '-o', out, '--model', 'judge-model', '--base-url', srv.base_url, '--cache-dir', tmp_path / 'c')
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr
    line = [l for l in r.stderr.splitlines() if l.startswith('synthbench judge: failed')]
    assert len(line) == 1 and '3 of 3 judge call(s) failed: HTTP 401' in line[0], r.stderr
    if HAS_KINDS:
        assert line[0].startswith('synthbench judge: failed (auth)')
    assert not out.exists()
