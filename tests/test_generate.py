"Generation and Evol-Instruct against the fake OpenAI server (and one slow test on the real local model)."

import hashlib, json, os, re, subprocess, sys
from collections import Counter
from pathlib import Path
import pytest
import pandas as pd
from fake_openai import FakeOpenAIServer
from synthbench.llm.engine import LLM, ChatModel
from synthbench.spec import load_spec
from synthbench.core import concat_tables
from synthbench.stages.generate import (
    generate,
    plan_generation,
    axis_targets,
    generate_eval_set,
    check_split_isolation,
    generate_edge_cases,
    GENERATE_CHAT,
    GENERATE_CLASSIFY,
    cli_generate,
)
from synthbench.stages.evol import evolve, evol_summary, LEVELS

ROOT = Path(__file__).resolve().parents[1]
TASK_API = ROOT / 'seeds' / 'task_api'
REPLY = {
    'create': "Created task: 'Call {u}' | Priority: medium | Due: none",
    'update': "Updated task: 'Call {u}' | Priority: low -> high",
    'complete': "Completed task: 'Call {u}'",
    'delete': "Deleted task: 'Call {u}'",
    'list': 'Tasks (0): none',
    'error': "Error: there is no task 'Call {u}'; list your tasks to see their titles",
}


def _focus(prompt: str) -> list[dict]:
    "The axis values the prompt asks for, one dict per example."
    n = int(re.search(r'Write (\d+) new', prompt)[1])
    per = [dict(re.findall(r'(\w+) = (\w+)', l)) for l in re.findall(r'^\d+\. (.*)$', prompt, re.M)]
    if per:
        return per + [per[-1]] * (n - len(per))
    return [dict(re.findall(r'^- (\w+) = (\w+)', prompt, re.M))] * n


def gen_responder(bad=lambda body, prompt: False):
    "A responder that answers generation prompts with k on-spec examples for the requested axes (garbage when `bad`)."

    def respond(body):
        p = next(m['content'] for m in body['messages'] if m['role'] == 'user')  # (a repair request repeats it)
        if 'response_format' not in body:
            return "Completed task: 'Evolved task'"  # answers to evolved prompts
        name = body['response_format']['json_schema']['name']
        if name == 'EvolvedPrompt':
            given = p.split('## The given prompt\n')[1].split('\n\nAnswer with JSON')[0]
            return json.dumps({'prompt': f'{given}, and make it high priority for next Friday'})
        if bad(body, p):
            return 'sorry, no JSON today'
        h = hashlib.md5(p.encode()).hexdigest()[:8]
        ex = []
        for j, f in enumerate(_focus(p)):
            u = f'{h}-{j}'
            if name == 'TextExamples':
                ex.append({'text': f'ticket {u} about {f.get("label")}', 'label': f.get('label')})
            else:
                cat = f.get('category', 'create')
                ex.append(
                    {
                        'messages': [
                            {'role': 'user', 'content': f'{f.get("phrasing", "plain")} request {u}: please {cat} the task Call {u}'},
                            {'role': 'assistant', 'content': REPLY.get(cat, 'See the policy [§1.1]').format(u=u)},
                        ]
                    }
                )
        return json.dumps({'examples': ex})

    return respond


@pytest.fixture
def spec():
    return load_spec(TASK_API)


def _llm(srv, tmp_path):
    return LLM(model='fake-model', base_url=srv.base_url, api_key='test', cache_dir=tmp_path / 'cache', progress=False)


def test_batching_rotation_and_lineage(spec, tmp_path):
    with FakeOpenAIServer(responder=gen_responder()) as srv:
        llm = _llm(srv, tmp_path)
        df = generate(spec, 60, llm, k=10)
        reqs = list(srv.requests)
    g = df.attrs['generation']
    assert g['stop_reason'] == 'target_reached' and g['calls'] == len(reqs) == 6  # 60 rows / k=10 (remainders packed)
    asked = [len(_focus(r['messages'][-1]['content'])) for r in reqs]
    assert max(asked) <= 10 and sum(asked) == 60
    assert all(r['response_format']['json_schema']['name'] == 'ChatExamples' for r in reqs)
    assert (df['valid'] == True).all(), df['invalid_reason'].unique()
    # rotation balance: valid rows per (category, phrasing, difficulty) match the targets exactly
    got = Counter(zip(df['category'], df['phrasing'], df['difficulty']))
    assert got == Counter({k: v for k, v in axis_targets(spec.axes, 60).items() if v})
    # lineage on every row
    seeds = set(spec.seeds()['id'])
    assert set(df['source']) == {'generated'} and set(df['op']) == {'generate'} and set(df['round']) == {1}
    assert set(df['model']) == {'fake-model'} and set(df['prompt_id']) == {GENERATE_CHAT.id}
    assert df['gen_seed_ids'].map(lambda s: len(s) == 3 and set(s) <= seeds).all()
    assert df['id'].is_unique and not set(df['id']) & seeds
    assert df['messages'].map(lambda m: m[0] == {'role': 'system', 'content': spec.system_prompt}).all()
    # seed rotation: the batches saw different seed subsets, and every seed was shown
    assert df.groupby('gen_batch')['gen_seed_ids'].first().map(tuple).nunique() == 6
    # the estimate prices the same calls before spending
    plan = plan_generation(spec, 60, llm, k=10)
    assert plan.calls == 6 and plan.estimate.calls == 6 and plan.estimate.tokens_in > 0


def test_overgeneration_until_valid_and_caps(spec, tmp_path):
    first = set()

    def bad_first_round(body, p):  # every round-1 call that asks for an 'update' fails
        return 'category = update' in p and 'Already written' not in p

    with FakeOpenAIServer(responder=gen_responder(bad_first_round)) as srv:
        llm = _llm(srv, tmp_path)
        df = generate(spec, 30, llm, k=10, validator=None)
        g = df.attrs['generation']
        assert g['stop_reason'] == 'target_reached' and g['rounds'] >= 2 and g['failed_calls'] >= 1
        assert int((df['valid'] == True).sum()) == 30
        log = pd.DataFrame(g['call_log'])
        assert (log['error'] != '').sum() == g['failed_calls'] and log['error'].str.contains('call failed|no examples').any()
    with FakeOpenAIServer(responder=gen_responder(lambda b, p: True)) as srv:
        df = generate(spec, 30, _llm(srv, tmp_path), k=10, max_calls=2)
        assert df.attrs['generation']['stop_reason'] == 'max_calls' and df.attrs['generation']['calls'] == 2 and len(df) == 0
        df = generate(spec, 30, _llm(srv, tmp_path), k=10, max_rounds=1, max_calls=100)
        assert df.attrs['generation']['stop_reason'] == 'max_rounds'


def test_invalid_rows_kept_and_marked(spec, tmp_path):
    def respond(body):
        p = next(m['content'] for m in body['messages'] if m['role'] == 'user')
        n = len(_focus(p))  # the first example of every call of 2+ has a reply off the task's format
        ex = [
            {
                'messages': [
                    {'role': 'user', 'content': f'do thing {hashlib.md5(p.encode()).hexdigest()[:6]}-{j}'},
                    {'role': 'assistant', 'content': 'OK!' if j == 0 and n > 1 else "Completed task: 'Thing'"},
                ]
            }
            for j in range(n)
        ]
        return json.dumps({'examples': ex})

    with FakeOpenAIServer(responder=respond) as srv:
        df = generate(spec, 8, _llm(srv, tmp_path), k=4, max_calls=4)
    bad = df[df['valid'] == False]
    assert len(bad) >= 2 and bad['invalid_reason'].str.len().gt(0).all()
    assert int((df['valid'] == True).sum()) == 8


def test_classification_balanced_labels(tmp_path):
    (tmp_path / 'task.yaml').write_text(
        'name: tickets\ntask_type: classification\ndescription: Route support tickets.\nlabels: [billing, shipping, other]\n'
    )
    (tmp_path / 'seeds.jsonl').write_text(
        '\n'.join(
            json.dumps({'text': t, 'label': l})
            for t, l in [('I was charged twice', 'billing'), ('Where is my parcel?', 'shipping'), ('Hello', 'other')]
        )
    )
    spec = load_spec(tmp_path)
    with FakeOpenAIServer(responder=gen_responder()) as srv:
        df = generate(spec, 12, _llm(srv, tmp_path), k=5)
    assert Counter(df['label']) == Counter({'billing': 4, 'shipping': 4, 'other': 4})
    assert set(df['prompt_id']) == {GENERATE_CLASSIFY.id} and df['messages'].isna().all()


def test_grounded_rows_record_their_chunk(spec, tmp_path):
    doc = '\n\n'.join(f'# Rule {i}\n\n' + f'Rule {i} says employees must file form {i} within {i + 2} days. ' * 6 for i in range(4))
    with FakeOpenAIServer(responder=gen_responder()) as srv:
        df = generate(spec, 8, _llm(srv, tmp_path), k=2, document=doc, chunk_chars=400)
        prompts = [r['messages'][-1]['content'] for r in srv.requests]
    assert df['gen_chunk_id'].nunique() == 4 and df['gen_chunk_text'].str.startswith('# Rule').all()
    for _, r in df.iterrows():
        assert any(r['gen_chunk_text'] in p for p in prompts)


def test_policy_qa_grounded_in_its_context(tmp_path):
    spec = load_spec(ROOT / 'seeds' / 'policy_qa')
    assert spec.context
    with FakeOpenAIServer(responder=gen_responder()) as srv:
        df = generate(spec, 6, _llm(srv, tmp_path), k=3)
        prompts = [r['messages'][-1]['content'] for r in srv.requests]
    assert len(df) == 6 and df['gen_chunk_id'].notna().all() and df['gen_chunk_id'].nunique() == 2
    assert all('## Source passage' in p for p in prompts)
    assert all(t in spec.context for t in df['gen_chunk_text'])


def test_eval_split_isolation(spec, tmp_path):
    with FakeOpenAIServer(responder=gen_responder()) as srv:
        llm = _llm(srv, tmp_path)
        train = generate(spec, 24, llm, k=8)
        ev = generate_eval_set(spec, 1, llm, train=train, k=8)
    assert set(ev['split']) == {'eval'} and set(ev['op']) == {'generate_eval'}
    cells = Counter(zip(ev.loc[ev['valid'] == True, 'category'], ev.loc[ev['valid'] == True, 'difficulty']))
    assert len(cells) == 24 and set(cells.values()) == {1}  # 6 categories x 4 difficulties, one each
    check_split_isolation(train, ev)
    assert len(concat_tables(train, ev)) == len(train) + len(ev)
    with pytest.raises(ValueError, match='appear in both'):
        check_split_isolation(train, train.head(3))


def test_edge_cases_tagged(spec, tmp_path):
    with FakeOpenAIServer(responder=gen_responder()) as srv:
        df = generate_edge_cases(spec, 6, _llm(srv, tmp_path), types=['ambiguous', 'prompt_injection', 'typos'], k=6)
        p = srv.requests[0]['messages'][-1]['content']
    assert Counter(df['edge_type']) == Counter({'ambiguous': 2, 'prompt_injection': 2, 'typos': 2})
    assert set(df['op']) == {'generate_edge'} and 'override the instructions' in p


def test_evol_levels_and_failures(spec, tmp_path):
    seeds = spec.seeds()
    easy = seeds[seeds['difficulty'] == 'easy'].head(3)
    with FakeOpenAIServer(responder=gen_responder()) as srv:
        ev = evolve(easy, spec, _llm(srv, tmp_path), rounds=3, breadth_share=0)
    assert len(ev) == 9 and ev['evol_fail_reason'].eq('').all()
    assert ev.groupby('round')['evol_level_name'].agg(set).tolist() == [{'moderate'}, {'complex'}, {'edge_case'}]
    assert ev.groupby('round')['difficulty'].agg(set).tolist() == [{'medium'}, {'hard'}, {'edge_case'}]
    assert set(ev.loc[ev['round'] == 3, 'evol_op']) == {'edge'} and ev.loc[ev['round'] == 3, 'edge_type'].notna().all()
    # chains lead back to the seeds
    by = ev.set_index('id')
    for rid in ev.loc[ev['round'] == 3, 'id']:
        chain = [rid]
        while chain[-1] in by.index:
            chain.append(by.loc[chain[-1], 'parent_id'])
        assert chain[-1] in set(easy['id']) and len(chain) == 4

    # an endpoint that echoes the prompt back: every evolution fails, is kept invalid with its reason
    def echo_back(body):
        p = body['messages'][-1]['content']
        if 'response_format' not in body:
            return 'Completed task: \'X\''
        return json.dumps({'prompt': p.split('## The given prompt\n')[1].split('\n\nAnswer with JSON')[0]})

    with FakeOpenAIServer(responder=echo_back) as srv:
        ev = evolve(easy, spec, _llm(srv, tmp_path), rounds=2)
    assert len(ev) == 6 and (ev['valid'] == False).all() and ev['evol_fail_reason'].str.startswith('unchanged').all()
    assert ev['invalid_reason'].str.startswith('evol: unchanged').all() and ev['id'].is_unique
    s = evol_summary(ev)
    assert s['failed'].sum() == 6 and s['kept'].sum() == 0


def _cli(args, env_extra=None, cwd=None):
    env = {
        **os.environ,
        'SYNTHBENCH_CACHE_DIR': str(env_extra.pop('cache'))
        if env_extra and 'cache' in env_extra
        else os.environ.get('SYNTHBENCH_CACHE_DIR', ''),
        **(env_extra or {}),
    }
    env = {k: v for k, v in env.items() if v != '' and k not in ('OPENAI_API_KEY', 'OPENAI_BASE_URL')}
    env.update(HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1')
    return subprocess.run(['synthbench', *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def test_cli_generate_end_to_end(tmp_path):
    from synthbench.formats import load_table

    out = tmp_path / 'out.jsonl'
    with FakeOpenAIServer(responder=gen_responder()) as srv:
        r = _cli(
            ['generate', str(TASK_API), '-n', '12', '-o', str(out), '--model', 'fake-model', '--base-url', srv.base_url, '--k', '5'],
            {'cache': tmp_path / 'c'},
        )
        assert r.returncode == 0, r.stderr
        assert 'stopped: target_reached' in r.stderr
        df = load_table(out)
        assert len(df) == 12 and (df['valid'] == True).all()
        for col in ('id', 'source', 'model', 'prompt_id', 'op', 'round', 'gen_seed_ids', 'gen_batch', 'valid', 'invalid_reason'):
            assert df[col].notna().all(), col
        assert set(df['model']) == {'fake-model'} and set(df['source']) == {'generated'}
        n = len(srv.requests)
        r = _cli(
            ['generate', str(TASK_API), '-n', '500', '--estimate', '--model', 'fake-model', '--base-url', srv.base_url],
            {'cache': tmp_path / 'c'},
        )
        assert r.returncode == 0 and 'plan: 25 calls' in r.stdout, r.stdout + r.stderr
        assert len(srv.requests) == n  # the estimate spent nothing
    r = _cli(['generate', str(tmp_path / 'nope'), '-n', '3', '-o', str(out)])
    assert r.returncode == 2 and 'not found' in r.stderr and 'task.yaml' in r.stderr


@pytest.mark.slow
def test_cli_generate_local_model(tmp_path):
    "`synthbench generate seeds/task_api -n 3` on the embedded model: bookkeeping only (135M content is not judged)."
    from synthbench.formats import load_table

    out = tmp_path / 'local.jsonl'
    r = _cli(['generate', str(TASK_API), '-n', '3', '-o', str(out), '--k', '3', '--max-calls', '2'], {'cache': tmp_path / 'c'})
    assert r.returncode == 0 or (r.returncode == 1 and 'synthbench generate: partial (target): got' in r.stderr), r.stderr[
        -2000:
    ]  # 135M rarely makes 3 valid rows
    assert 'stopped:' in r.stderr
    df = load_table(out)
    assert len(df) >= 1, r.stderr[-2000:]
    assert df['model'].str.contains('smollm2', case=False).all()
    for col in ('id', 'source', 'op', 'round', 'prompt_id', 'gen_seed_ids', 'valid'):
        assert df[col].notna().all(), col
    assert (df.loc[df['valid'] == False, 'invalid_reason'].str.len() > 0).all()  # invalid rows are marked


# --- balanced pilots, "unlike these" in first-round prompts, the stage contract, loud failures ---

from synthbench.llm.engine import ChatResult
from synthbench.run.stage import RunContext, check_params
from synthbench.stages.generate import generate_stage

HAS_KINDS = 'error_kind' in getattr(ChatResult, '__dataclass_fields__', {})  # the engine labels its errors (after the engine change)


def _marginals(df, spec):
    return {a: Counter(df[a]) for a in spec.axes}


@pytest.mark.parametrize('n', [4, 8, 50])
def test_pilot_runs_cover_every_category_and_keep_axis_shares(spec, tmp_path, n):
    with FakeOpenAIServer(responder=gen_responder()) as srv:
        df = generate(spec, n, _llm(srv, tmp_path), k=10)
    assert int((df['valid'] == True).sum()) == n
    cats = spec.axes['category']
    assert df['category'].nunique() == min(n, len(cats))  # was: n=8 -> all 'create'
    if n >= len(cats):
        for a, vals in spec.axes.items():
            tot = sum(vals.values())
            got = Counter(df[a])
            for v, w in vals.items():
                assert abs(got[v] - n * w / tot) <= 1, (n, a, v, got[v], n * w / tot)  # was: n=50 -> no 'delete'


def test_unlike_list_reaches_first_round_prompts(spec, tmp_path):
    with FakeOpenAIServer(responder=gen_responder()) as srv:
        df = generate(spec, 500, _llm(srv, tmp_path), k=20, max_rounds=1)
        prompts = [next(m['content'] for m in r['messages'] if m['role'] == 'user') for r in srv.requests]
    assert len(prompts) == 25 and int((df['valid'] == True).sum()) == 500
    with_unlike = sum('## Already written' in p for p in prompts)
    assert with_unlike >= 20, with_unlike  # was: 0 of 25 in a one-round run
    assert df.attrs['generation']['with_unlike'] == with_unlike


def test_generate_stage_contract(spec, tmp_path):
    with FakeOpenAIServer(responder=gen_responder()) as srv:
        ctx = RunContext(spec=spec, llms={'main': _llm(srv, tmp_path)}, seed=7)
        res = generate_stage(spec.seeds(), ctx=ctx, n=12, k=5)
    assert res.status == 'ok' and len(res.table) == 12 and res.table.attrs == {}
    assert res.report['stop_reason'] == 'target_reached' and res.report['calls'] == 3 and json.dumps(res.report)
    assert not set(res.table['id']) & set(spec.seeds()['id'])
    assert check_params(generate_stage, {'n': 1, 'k': 2, 'max_round': 3})[0][1].endswith("did you mean 'max_rounds'?")
    assert check_params(generate_stage, {'rng_seed': 1})  # the run's seed comes from ctx.seed


def test_generate_stage_missed_target_is_partial(spec, tmp_path):
    def bad(body, p):
        return int(hashlib.md5(p.encode()).hexdigest(), 16) % 2 == 0  # about half the calls answer garbage

    with FakeOpenAIServer(responder=gen_responder(bad)) as srv:
        res = generate_stage(spec.seeds(), ctx=RunContext(spec=spec, llms={'main': _llm(srv, tmp_path)}), n=40, k=5, max_calls=8)
    got = int((res.table['valid'] == True).sum())
    assert res.status == 'partial' and res.error_kind == 'target' and got < 40
    assert res.reason.startswith(f'got {got} of 40 valid rows after 8 call(s) (max_calls)'), res.reason


@pytest.fixture(scope='module')
def teacher():
    "The scripted capable teacher on the task API, one for the module; `auth_key` set so a wrong key gets a real 401."
    from synthbench.testing import ScriptedTeacher

    with ScriptedTeacher('task_api', defect_rate=0.0, seed=0, auth_key='sk-teacher') as t:
        yield t


def test_budget_running_out_fails_the_stage_and_says_how_far(spec, teacher):
    from synthbench.testing import teacher_llm

    # a real engine whose budget runs out part way: each call of k=10 reserves its worst case (3,080 completion tokens at
    # $10/1M = $0.031) before it is sent, and books what the answer cost; calls stop once the next reservation does not fit
    llm = teacher_llm(teacher, budget_usd=0.045, prices={'teacher': (0.0, 10.0)}, max_concurrency=1)
    assert isinstance(llm, ChatModel)
    sent = teacher.stats['answers']
    res = generate_stage(spec.seeds(), ctx=RunContext(spec=spec, llms={'main': llm}), n=100, k=10)
    answered = teacher.stats['answers'] - sent
    got = int((res.table['valid'] == True).sum())
    assert res.status == 'failed' and res.error_kind == 'budget'  # was: stop_reason 'budget' in attrs only
    assert 0 < answered < 10 and 0 < got < 100, (answered, got)  # it stopped before the 10 calls 100 rows need
    assert res.reason.startswith(f'the budget ran out: stopped at {got} of 100 rows after'), res.reason


def test_all_calls_refused_fail_the_stage(spec, teacher):
    from synthbench.testing import teacher_llm

    refused = teacher.stats['unauthorized']
    res = generate_stage(spec.seeds(), ctx=RunContext(spec=spec, llms={'main': teacher_llm(teacher, api_key='sk-wrong')}), n=100, k=10)
    calls = teacher.stats['unauthorized'] - refused
    assert (res.status, res.error_kind, len(res.table)) == ('failed', 'auth', 0)
    assert 1 <= calls <= 10 and res.reason.startswith(
        f'{calls} of {calls} generation call(s) failed: HTTP 401: Incorrect API key provided'
    ), res.reason


def test_cli_generate_refuses_bad_output_and_seeds_before_spending(tmp_path):
    with FakeOpenAIServer(responder=gen_responder()) as srv:
        base = ['generate', str(TASK_API), '-n', '5', '--model', 'fake-model', '--base-url', srv.base_url]
        for out, what in [(tmp_path / 'out.txt', "cannot write the output as '.txt'"), ('/proc/x/out.jsonl', 'cannot create the folder')]:
            r = _cli([*base, '-o', str(out)], {'cache': tmp_path / 'c'})
            assert r.returncode == 2 and what in r.stderr and 'Traceback' not in r.stderr, r.stderr
        r = _cli([*base, '-o', str(tmp_path / 'o.jsonl'), '--format', 'nope'], {'cache': tmp_path / 'c'})
        assert r.returncode == 2 and 'unknown format' in r.stderr and 'Traceback' not in r.stderr
        bad = tmp_path / 'task'
        bad.mkdir()
        (bad / 'task.yaml').write_text((TASK_API / 'task.yaml').read_text())
        lines = (TASK_API / 'seeds.jsonl').read_text().splitlines()
        lines[6] = lines[6][:-5]  # line 7 cut short
        (bad / 'seeds.jsonl').write_text('\n'.join(lines) + '\n')
        r = _cli(
            ['generate', str(bad), '-n', '5', '-o', str(tmp_path / 'o.jsonl'), '--model', 'fake-model', '--base-url', srv.base_url],
            {'cache': tmp_path / 'c'},
        )
        assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr
        assert 'seeds.jsonl' in r.stderr and 'line 7' in r.stderr and 'Fix:' in r.stderr and len(r.stderr.strip().splitlines()) == 1, (
            r.stderr
        )
        assert len(srv.requests) == 0


def test_cli_generate_wrong_key_exits_1_and_writes_nothing(tmp_path):
    out = tmp_path / 'out.jsonl'
    with FakeOpenAIServer(responder=lambda b: {'status': 401, 'error': 'Incorrect API key provided'}) as srv:
        r = _cli(
            ['generate', str(TASK_API), '-n', '12', '-o', str(out), '--model', 'fake-model', '--base-url', srv.base_url, '--k', '5'],
            {'cache': tmp_path / 'c'},
        )
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr
    line = [l for l in r.stderr.splitlines() if l.startswith('synthbench generate: failed')]
    assert len(line) == 1 and 'generation call(s) failed' in line[0] and '401' in line[0], r.stderr
    if HAS_KINDS:
        assert 'failed (auth)' in line[0]
    assert not out.exists()


def test_cli_generate_estimate_and_help_say_the_truth(tmp_path):
    # with a key but no model (and no $SYNTHBENCH_MODEL) the plan is printed and names what to pass; no traceback
    env = {'cache': tmp_path / 'c', 'MYKEY': 'sk-test'}
    r = _cli(['generate', str(TASK_API), '-n', '100', '--estimate', '--api-key-env', 'MYKEY'], env)
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr
    assert 'plan: 5 calls' in r.stdout and ('--model' in r.stdout or '$' in r.stdout), r.stdout
    h = _cli(['generate', '--help'])
    assert h.returncode == 0 and '$SYNTHBENCH_MODEL' in h.stdout and 'OPENAI_MODEL' not in h.stdout


def test_evolve_stage_adds_rows_and_fails_on_refused_calls(spec, tmp_path):
    from synthbench.stages.evol import evolve_stage

    easy = spec.seeds()
    easy = easy[easy['difficulty'] == 'easy'].head(2)
    with FakeOpenAIServer(responder=gen_responder()) as srv:
        res = evolve_stage(easy, ctx=RunContext(spec=spec, llms={'main': _llm(srv, tmp_path)}), rounds=1, breadth_share=0)
    assert res.status == 'ok' and len(res.table) == 4 and res.report['new_rows'] == 2 and json.dumps(res.report)
    assert set(res.table['parent_id'].dropna()) <= set(easy['id'])
    with FakeOpenAIServer(responder=lambda b: {'status': 401, 'error': 'Incorrect API key provided'}) as srv:
        res = evolve_stage(easy, ctx=RunContext(spec=spec, llms={'main': _llm(srv, tmp_path)}), rounds=1)
    assert res.status == 'failed' and res.reason.startswith('2 of 2 evolution call(s) failed: HTTP 401'), res.reason


def test_cli_generate_missed_target_exits_1_and_writes_what_it_made(tmp_path):
    from synthbench.formats import load_table

    out = tmp_path / 'out.jsonl'

    def bad(body, p):
        return int(hashlib.md5(p.encode()).hexdigest(), 16) % 2 == 0

    with FakeOpenAIServer(responder=gen_responder(bad)) as srv:
        r = _cli(
            [
                'generate',
                str(TASK_API),
                '-n',
                '40',
                '-o',
                str(out),
                '--model',
                'fake-model',
                '--base-url',
                srv.base_url,
                '--k',
                '5',
                '--max-calls',
                '8',
            ],
            {'cache': tmp_path / 'c'},
        )
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr
    line = [l for l in r.stderr.splitlines() if l.startswith('synthbench generate: partial (target): got ')]
    assert len(line) == 1 and 'of 40 valid rows after 8 call(s) (max_calls)' in line[0], r.stderr
    df = load_table(out)
    assert 0 < int((df['valid'] == True).sum()) < 40
