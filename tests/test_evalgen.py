"evaluate_outputs / compare_outputs against the fake OpenAI server: compliance per category, failed calls, judge figures, caching."

import json, math, re, warnings
import pytest
from fake_openai import FakeOpenAIServer
from synthbench.core import seeds_path
from synthbench.analysis.evalgen import EvalResult, compare_outputs, eval_figures, evaluate_outputs
from synthbench.llm.engine import LLM
from synthbench.spec import load_spec

SPEC = load_spec(seeds_path('task_api'))
SEEDS = SPEC.seeds()
# last user message of each seed -> (category, reference reply)
BY_PROMPT = {
    [m for m in msgs if m['role'] == 'user'][-1]['content']: (cat, msgs[-1]['content'])
    for msgs, cat in zip(SEEDS['messages'], SEEDS['category'])
}
COUNTS = SEEDS['category'].value_counts().to_dict()
GOOD = ('create', 'update', 'complete')  # the model under test answers these in the task's format
PROSE = 'Sure! I have taken care of that for you.'


def last_user(body):
    return [m for m in body['messages'] if m['role'] == 'user'][-1]['content']


def model_responder(body):
    "The model under test: format-compliant replies for GOOD categories, prose for list/delete, HTTP 500 for error rows."
    if body['model'] == 'judge-model':
        return judge_responder(body)
    cat, ref = BY_PROMPT[last_user(body)]
    if body['model'] == 'base-model':
        return PROSE
    if cat in GOOD:
        return ref
    if cat == 'error':
        return {'status': 500, 'error': 'the fine-tune server crashed'}
    return PROSE


def judge_responder(body):
    "Judge: 2 on every criterion for prose replies, 5 otherwise (scores for whatever criteria the schema asks)."
    block = re.search(r'<example>.*?</example>', body['messages'][-1]['content'], re.S).group(0)
    s = 2 if PROSE in block else 5
    props = body['response_format']['json_schema']['schema']['properties']
    names = [k[:-6] for k in props if k.endswith('_score')]
    return json.dumps({**{f'{n}_reason': 'r' for n in names}, **{f'{n}_score': s for n in names}, 'summary': 'ok'})


def llm(srv, tmp_path, model):
    return LLM(model=model, base_url=srv.base_url, api_key='test', cache_dir=tmp_path / 'cache', progress=False, max_retries=0)


def test_compliance_per_category_failed_calls_and_judge(tmp_path):
    with FakeOpenAIServer(responder=model_responder) as srv:
        ft, jl = llm(srv, tmp_path, 'ft-model'), llm(srv, tmp_path, 'judge-model')
        with pytest.warns(UserWarning, match=r'2 of 20 eval row\(s\) got no reply'):
            res = evaluate_outputs(SEEDS, ft, SPEC, judge_llm=jl, criteria=['format', 'accuracy'], max_tokens=64)
        reqs = list(srv.requests)
    asked = [r for r in reqs if r['model'] == 'ft-model']
    judged = [r for r in reqs if r['model'] == 'judge-model']
    assert len(asked) == 20 and len(judged) == 18  # failed rows are not judged
    assert all(r['messages'][0] == {'role': 'system', 'content': SPEC.system_prompt} for r in asked)
    assert all(r['max_tokens'] == 64 and r['temperature'] == 0.0 for r in asked)
    assert all(r['messages'][-1]['role'] == 'user' for r in asked)  # the reference is never sent
    f = res.figures
    assert (f['n'], f['answered'], f['failed']) == (20, 18, 2)
    n_good = sum(COUNTS[c] for c in GOOD)
    assert f['valid'] == n_good and f['compliance'] == pytest.approx(n_good / 18)
    by = f['by']['category']
    for c in GOOD:
        assert by[c]['compliance'] == 1.0 and by[c]['answered'] == COUNTS[c]
    for c in ('list', 'delete'):
        assert by[c]['compliance'] == 0.0 and by[c]['valid'] == 0
    assert by['error']['failed'] == 2 and math.isnan(by['error']['compliance'])
    assert f['invalid_reasons'] == {'format_mismatch': COUNTS['list'] + COUNTS['delete']}
    assert f['failed_reasons'] == {'model_error': 2}
    assert f['exact_match'] == pytest.approx(n_good / 18)
    # failed calls are kept, with their error
    t = res.table
    assert t['id'].tolist() == SEEDS['id'].tolist() and set(t['model']) == {'ft-model'} and set(t['source']) == {'model_output'}
    failed = res.failed
    assert len(failed) == 2 and set(failed['category']) == {'error'}
    assert all('500' in e and 'fine-tune server crashed' in e for e in failed['eval_error'])
    assert t.loc[t.category == 'error', 'valid'].tolist() == [False, False]
    assert t['eval_reference'].tolist() == [m[-1]['content'] for m in SEEDS['messages']]
    # judge figures
    j = f['judge']
    assert j['model'] == 'judge-model' and j['judged'] == 18 and j['errors'] == 0
    mean = (n_good * 5 + (18 - n_good) * 2) / 18
    assert j['means'] == {'format': pytest.approx(mean), 'accuracy': pytest.approx(mean)}
    assert j['pass_rate'] == pytest.approx(n_good / 18)
    assert t.loc[t.category == 'error', 'judge_reason'].str.startswith('not judged').all()
    assert by['list']['judge_pass_rate'] == 0.0 and by['create']['judge_pass_rate'] == 1.0
    # JSON-ready, and the figures can be recomputed from the table alone
    d = json.loads(json.dumps(res.to_dict()))
    assert d['by']['category']['error']['compliance'] is None and len(d['failed_calls']) == 2
    again = eval_figures(res.table)
    assert again['compliance'] == f['compliance'] and again['judge']['pass_rate'] == j['pass_rate']


def test_rerun_is_cached_and_retries_only_failures(tmp_path):
    with FakeOpenAIServer(responder=model_responder) as srv:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            first = evaluate_outputs(SEEDS, llm(srv, tmp_path, 'ft-model'), SPEC)
            n1 = len(srv.requests)
            second = evaluate_outputs(SEEDS, llm(srv, tmp_path, 'ft-model'), SPEC)
        n2 = len(srv.requests) - n1
    assert n1 == 20 and n2 == 2  # only the two failed calls are sent again
    assert second.figures['compliance'] == first.figures['compliance']


def test_truncated_reply_counts_as_answered_not_compliant(tmp_path):
    rows = SEEDS[SEEDS.category == 'create'].iloc[:2]

    def cut(body):
        return {'content': "Created task: 'Review", 'finish_reason': 'length'}

    with FakeOpenAIServer(responder=cut) as srv:
        res = evaluate_outputs(rows, llm(srv, tmp_path, 'ft-model'), SPEC, max_tokens=5)
    f = res.figures
    assert (f['answered'], f['failed'], f['truncated'], f['valid']) == (2, 0, 2, 0)
    assert res.table['invalid_reason'].str.startswith('truncated: the reply hit max_tokens=5').all()


def test_compare_base_and_fine_tuned(tmp_path):
    with FakeOpenAIServer(responder=model_responder) as srv:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            ft = evaluate_outputs(SEEDS, llm(srv, tmp_path, 'ft-model'), SPEC)
            base = evaluate_outputs(SEEDS, llm(srv, tmp_path, 'base-model'), SPEC)
    assert isinstance(base, EvalResult) and base.figures['compliance'] == 0.0 and base.figures['failed'] == 0
    cmp = compare_outputs({'base': base, 'fine-tuned': ft})
    assert list(cmp.columns) == ['base', 'fine-tuned', 'fine-tuned - base']
    assert cmp.loc['model', 'base'] == 'base-model' and cmp.loc['model', 'fine-tuned'] == 'ft-model'
    assert cmp.loc['compliance', 'fine-tuned - base'] == pytest.approx(ft.figures['compliance'])
    assert cmp.loc['compliance [category=create]', 'fine-tuned'] == 1.0
    assert cmp.loc['failed', 'fine-tuned - base'] == 2
    assert '<table' in cmp._repr_html_()
    assert list(compare_outputs({'a': base, 'b': ft, 'c': ft}).columns) == ['a', 'b', 'c']  # no delta for 3 runs
    with pytest.warns(UserWarning, match='different eval sets'):
        compare_outputs({'base': base, 'part': EvalResult(ft.table.iloc[:3], eval_figures(ft.table.iloc[:3]))})
