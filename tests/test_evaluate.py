"Held-out real sets (on spec, covering every category, no leakage from seeds) and the scoring of students on them."

import json, os
from pathlib import Path
import numpy as np
import pandas as pd
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
from synthbench.core import seeds_path
from synthbench.spec import load_spec
from synthbench.stages.validate import validate
from synthbench.stages.dedup import check_leakage
from synthbench.llm.engine import ChatResult, Usage
from synthbench.analysis import evaluate as ev

MINIMUM = {'task_api': 40, 'support_tickets': 30, 'policy_qa': 20}


@pytest.mark.parametrize('name', list(MINIMUM))
def test_heldout_rows_are_on_spec_and_cover_the_task(name):
    spec = load_spec(seeds_path(name))
    ho = ev.load_heldout(spec)
    assert len(ho) >= MINIMUM[name] and (ho['source'] == 'real').all()
    v = validate(ho, spec)
    assert v['valid'].all(), v.loc[~v['valid'].astype(bool), 'invalid_reason'].tolist()
    cat = spec.category_axis
    vals = ho['label'] if spec.task_type == 'classification' else ho[cat]
    assert set(vals) == set(spec.axes[cat]), f'{name}: missing {set(spec.axes[cat]) - set(vals)}'
    assert set(ho['difficulty']) == set(spec.axes['difficulty'])
    assert ho['id'].is_unique


@pytest.mark.parametrize('name', list(MINIMUM))
def test_heldout_does_not_leak_from_seeds(name):
    spec = load_spec(seeds_path(name))
    r = check_leakage(spec.seeds(), ev.load_heldout(spec), methods=['exact', 'minhash'], progress=False)
    assert r.n_flagged == 0, r.pairs[['a_text', 'b_text']].to_dict('records')


@pytest.mark.slow
@pytest.mark.parametrize('name', list(MINIMUM))
def test_heldout_has_no_semantic_near_copies_of_seeds(name):
    spec = load_spec(seeds_path(name))
    r = check_leakage(spec.seeds(), ev.load_heldout(spec), progress=False)  # exact, MinHash and embeddings
    assert r.n_flagged == 0, r.pairs[['a_text', 'b_text']].to_dict('records')


def test_task_api_heldout_dates_carry_the_right_weekday():
    import datetime as dt, re

    for m in ev.load_heldout(load_spec(seeds_path('task_api')))['messages']:
        for msg in m:
            for d, wd in re.findall(r'(\d{4}-\d{2}-\d{2}) \((\w+)\)', msg['content']):
                assert dt.date.fromisoformat(d).strftime('%A') == wd, (d, wd)


def test_every_task_api_reference_parses_and_scores_itself():
    ho = ev.load_heldout(load_spec(seeds_path('task_api')))
    for m in ho['messages']:
        ref = m[-1]['content']
        ops = ev.parse_task_reply(ref)
        assert ops and all(o['action'] != 'unparsed' for o in ops), ref
        s = ev.task_field_scores(ref, ref)
        assert s['all_fields'] == 1.0 and s['action'] == 1.0


def test_field_scores_catch_wrong_but_well_formed_replies():
    ref = "Created task: 'Renew passport' | Priority: high | Due: 2025-01-31 (Friday)"
    s = ev.task_field_scores("Created task: 'Renew passport' | Priority: high | Due: 2025-01-30 (Thursday)", ref)
    assert (s['action'], s['title'], s['priority'], s['due'], s['all_fields']) == (1.0, 1.0, 1.0, 0.0, 0.0)


def test_bootstrap_is_deterministic_and_brackets_the_value():
    x = np.r_[np.ones(30), np.zeros(10)]
    a, b = ev.mean_ci(x.tolist(), seed=1), ev.mean_ci(x.tolist(), seed=1)
    assert a == b and a[1] < a[0] == 0.75 < a[2]
    assert np.isnan(ev.mean_ci([None, None])[0])


class Scripted:
    "An LLM-like student: answers each prompt with `answer(prompt)`."

    cost = 0.0

    def __init__(self, answer, model='scripted'):
        self.answer, self.model, self.calls = answer, model, 0

    def chat_many(self, prompts, **kw):
        self.calls += len(prompts)
        return [ChatResult(text=self.answer(p), usage=Usage(10, 5), model=self.model, finish_reason='stop') for p in prompts]


def _refs(name):
    ho = ev.load_heldout(load_spec(seeds_path(name)))
    if 'messages' in ho and not ho['messages'].isna().all():
        return {m[-2]['content']: m[-1]['content'] for m in ho['messages']}
    return dict(zip(ho['text'], ho['label']))


def test_evaluate_a_perfect_and_a_broken_student():
    refs = _refs('task_api')
    perfect = ev.evaluate(Scripted(lambda p: refs[p[-1]['content']]), spec=seeds_path('task_api'), n_boot=200, progress=False)
    assert perfect.compliance == 1.0 and perfect.figure('exact_match') == 1.0 and perfect.figure('field_all_fields') == 1.0
    assert perfect.figures['format_compliance'][1:] == (1.0, 1.0)
    chatty = ev.evaluate(Scripted(lambda p: 'Sure! I added that for you.'), spec=seeds_path('task_api'), n_boot=200, progress=False)
    assert chatty.compliance == 0.0 and chatty.figure('field_action') == 0.0
    cmp = ev.compare_students({'chatty': chatty, 'perfect': perfect})
    assert cmp.values().loc['format_compliance'].tolist() == [0.0, 1.0]
    assert 'format_compliance' in cmp._repr_html_() and '100% [100%, 100%]' in cmp.table['perfect'].tolist()


def test_evaluate_classification_accuracy_and_macro_f1():
    refs = _refs('support_tickets')

    def answer(p):
        return refs[p[-1]['content']] if refs[p[-1]['content']] != 'product' else 'technical'

    r = ev.evaluate(Scripted(answer), spec=seeds_path('support_tickets'), n_boot=200, progress=False)
    n_prod = sum(v == 'product' for v in refs.values())
    assert r.compliance == 1.0 and r.figure('accuracy') == pytest.approx(1 - n_prod / len(refs))
    lo, hi = r.figures['macro_f1'][1:]
    assert 0 < r.figure('macro_f1') < 1 and lo <= r.figure('macro_f1') <= hi


def test_evaluate_policy_qa_replies_checked_against_the_citation_format():
    r = ev.evaluate(Scripted(lambda p: 'Yes, that is fine.'), spec=seeds_path('policy_qa'), n_boot=0, progress=False)
    assert r.compliance == 0.0 and len(r.table) >= 20


def test_policy_qa_correctness_beyond_the_format():
    "Free-text answers get word-overlap F1 and citation match: a well-formed answer citing the wrong section scores low on both."
    refs = _refs_alpaca('policy_qa')
    right = ev.evaluate(Scripted(lambda p: refs[p[-1]['content']]), spec=seeds_path('policy_qa'), n_boot=100, progress=False)
    assert right.figure('token_f1') == 1.0 and right.figure('citation_match') == 1.0
    wrong = ev.evaluate(
        Scripted(lambda p: 'Yes, you can do that whenever you like. [§9.9]'), spec=seeds_path('policy_qa'), n_boot=100, progress=False
    )
    assert wrong.compliance == 1.0 and wrong.figure('citation_match') == 0.0 and wrong.figure('token_f1') < 0.3
    half = ev.evaluate(
        Scripted(lambda p: refs[p[-1]['content']].rsplit('[', 1)[0] + '[§9.9]'), spec=seeds_path('policy_qa'), n_boot=100, progress=False
    )
    assert half.figure('citation_match') == 0.0 and half.figure('token_f1') > 0.7


def _refs_alpaca(name):
    ho = ev.load_heldout(load_spec(seeds_path(name)))
    rows = ev._as_chat_rows(ho)
    return {m[-2]['content']: m[-1]['content'] for m in rows['messages']}


def test_student_llm_picks_the_right_engine(tmp_path):
    s = Scripted(lambda p: 'x')
    assert ev.student_llm(s) is s
    from synthbench.llm.engine import LLM

    llm = ev.student_llm('ft:gpt-4o-mini:acme::abc', base_url='http://127.0.0.1:9/v1', api_key='test')
    assert isinstance(llm, LLM) and llm.model == 'ft:gpt-4o-mini:acme::abc'


@pytest.mark.slow
def test_local_student_is_deterministic():
    st = ev.LocalStudent(batch_size=4)
    p = [[{'role': 'user', 'content': 'add a task to buy milk'}], [{'role': 'user', 'content': 'list my tasks'}]]
    a, b = st.chat_many(p, max_tokens=16, progress=False), st.chat_many(p[::-1], max_tokens=16, progress=False)
    assert [x.text for x in a] == [x.text for x in b[::-1]] and all(x.usage.completion_tokens <= 16 for x in a)
