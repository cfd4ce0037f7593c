"Augmentation against the fake OpenAI server: paraphrase, back-translation, context, edge variants, the parent check, the CLI."

import json, os, re, subprocess
from pathlib import Path
import pytest
from fake_openai import FakeOpenAIServer
from synthbench.llm.engine import LLM
from synthbench.spec import load_spec
from synthbench.core import make_table
from synthbench.stages.augment import (
    paraphrase,
    back_translate,
    vary_context,
    edge_variants,
    check_augmented,
    augment,
    PARAPHRASE,
    TRANSLATE,
)

ROOT = Path(__file__).resolve().parents[1]
TASK_API = ROOT / 'seeds' / 'task_api'


def aug_responder(body):
    "Structured answers that show what they were asked (language, context, variant number); the parent check fails variant 1."
    p = next(m['content'] for m in body['messages'] if m['role'] == 'user')
    name = (body.get('response_format') or {}).get('json_schema', {}).get('name')
    m = re.search(r'(?:Original request:|Text:)\n<input>\n(.*?)\n</input>', p, re.S)
    txt = m[1] if m else p
    if name == 'Variants':
        n = int(re.search(r'in (\d+) different', p)[1])
        return json.dumps({'variants': [f'{txt} (variant {i})' for i in range(n)]})
    if name == 'Translation':
        lang = re.search(r'into (\w+)', p)[1]
        if lang == 'English':
            return json.dumps({'text': txt + ' (back)'})
        return json.dumps({'text': f'[{lang}] {txt}'})
    if name == 'Rewrite':
        ctx = re.search(r'(?:context|kind): (.+?)\.\n', p)[1]
        return json.dumps({'user': f'{txt} ({ctx[:30]})', 'assistant': "Created task: 'Ctx' | Priority: medium | Due: none"})
    if name == 'SameIntent':
        v = p.split('Variant:')[1]
        return json.dumps({'same_intent': 'variant 1' not in v, 'reason': 'variant 1 drifts' if 'variant 1' in v else 'same request'})
    return "Error: which task do you mean? Give its title"


@pytest.fixture
def seeds():
    return load_spec(TASK_API).seeds().head(3)


def _llm(srv, tmp_path):
    return LLM(model='fake-model', base_url=srv.base_url, api_key='test', cache_dir=tmp_path / 'cache', progress=False)


def test_paraphrase_keeps_label_and_lineage(seeds, tmp_path):
    spec = load_spec(TASK_API)
    with FakeOpenAIServer(responder=aug_responder) as srv:
        pa = paraphrase(seeds, _llm(srv, tmp_path), n=3, spec=spec)
        assert len(srv.requests) == 3 and srv.requests[0]['response_format']['json_schema']['name'] == 'Variants'
    assert len(pa) == 9 and set(pa['op']) == {'paraphrase'} and set(pa['source']) == {'augmented'}
    assert pa['parent_id'].tolist() == [i for i in seeds['id'] for _ in range(3)]
    par = seeds.set_index('id')
    for _, r in pa.iterrows():
        p = par.loc[r['parent_id']]
        assert r['messages'][-1] == p['messages'][-1] and r['category'] == p['category'] and r['difficulty'] == p['difficulty']
        assert r['messages'][0]['content'].startswith(p['messages'][0]['content'])
    assert set(pa['prompt_id']) == {PARAPHRASE.id} and set(pa['model']) == {'fake-model'} and (pa['valid'] == True).all()


def test_back_translation_records_pivot(seeds, tmp_path):
    with FakeOpenAIServer(responder=aug_responder) as srv:
        bt = back_translate(seeds, _llm(srv, tmp_path), pivots=['de', 'ja'])
        assert len(srv.requests) == 12  # there and back, per row and pivot
    assert bt['aug_pivot'].tolist() == ['de', 'ja'] * 3
    assert bt['aug_pivot_text'].str.startswith(('[German]', '[Japanese]')).all()
    assert bt['messages'].map(lambda m: m[0]['content'].endswith('(back)')).all()
    assert (bt['tokens_in'] > 0).all() and set(bt['prompt_id']) == {TRANSLATE.id}


def test_context_variation_and_edge_variants(seeds, tmp_path):
    spec = load_spec(TASK_API)
    with FakeOpenAIServer(responder=aug_responder) as srv:
        llm = _llm(srv, tmp_path)
        cv = vary_context(seeds, llm, contexts={'industry': ['healthcare', 'retail'], 'channel': ['email']}, per_row=2, spec=spec)
        assert cv['aug_context'].tolist() == [
            'industry: healthcare',
            'industry: retail',
            'channel: email',
            'industry: healthcare',
            'industry: retail',
            'channel: email',
        ]
        assert cv['messages'].map(lambda m: m[-1]['content'].startswith("Created task: 'Ctx'")).all()
        assert 'task-manager API' in srv.requests[0]['messages'][0]['content']  # the task's rules are in the prompt
        ev = edge_variants(seeds, types=['typos', 'truncated', 'out_of_scope'], per_row=3, llm=llm, spec=spec)
    assert sorted(ev['edge_type'].value_counts().to_dict().items()) == [('out_of_scope', 3), ('truncated', 3), ('typos', 3)]
    assert set(ev.loc[ev['edge_type'] == 'typos', 'edge_answer']) == {'parent'}
    assert set(ev.loc[ev['edge_type'] == 'truncated', 'edge_answer']) == {'model'}  # re-answered for the cut-off input
    assert ev.loc[ev['edge_type'] == 'truncated', 'messages'].map(lambda m: m[-1]['content'].startswith('Error:')).all()
    assert set(ev['op']) == {'edge'} and ev['parent_id'].isin(seeds['id']).all()


def test_check_records_disagreement(seeds, tmp_path):
    with FakeOpenAIServer(responder=aug_responder) as srv:
        llm = _llm(srv, tmp_path)
        pa = paraphrase(seeds, llm, n=2)
        ck = check_augmented(pa, seeds, llm)
    assert len(ck) == len(pa)  # nothing dropped
    assert ck['aug_check'].tolist() == ['pass', 'fail'] * 3
    assert ck.loc[ck['aug_check'] == 'fail', 'aug_check_reason'].eq('variant 1 drifts').all()


def test_failed_calls_kept_marked(seeds, tmp_path):
    with FakeOpenAIServer(responder=lambda b: {'status': 400, 'error': 'bad request'}) as srv:
        pa = paraphrase(seeds, _llm(srv, tmp_path), n=2)
    assert len(pa) == 3 and (pa['valid'] == False).all() and pa['invalid_reason'].str.startswith('aug: call failed').all()


def test_cli_augment(tmp_path):
    from synthbench.formats import load_table

    out = tmp_path / 'aug.jsonl'
    env = {k: v for k, v in os.environ.items() if k not in ('OPENAI_API_KEY', 'OPENAI_BASE_URL')}
    env.update(SYNTHBENCH_CACHE_DIR=str(tmp_path / 'c'), HF_HUB_OFFLINE='1')
    src = TASK_API / 'seeds.jsonl'
    with FakeOpenAIServer(responder=aug_responder) as srv:
        r = subprocess.run(
            [
                'synthbench',
                'augment',
                str(src),
                '-o',
                str(out),
                '--op',
                'paraphrase',
                '--n',
                '2',
                '--model',
                'fake-model',
                '--base-url',
                srv.base_url,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
    df = load_table(out)
    n = sum(1 for _ in open(src))
    new = df[df['source'] == 'augmented']
    assert len(df) == 3 * n and len(new) == 2 * n and new['aug_check'].isin(['pass', 'fail']).all()
    assert new['parent_id'].isin(df.loc[df['source'] == 'seed', 'id']).all()
    r = subprocess.run(
        ['synthbench', 'augment', str(src), '-o', str(out), '--op', 'edge', '--types', 'typos,unicode', '--check', 'none'],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert set(load_table(out)['edge_type'].dropna()) == {'typos', 'unicode'}
    r = subprocess.run(
        ['synthbench', 'augment', str(tmp_path / 'missing.jsonl'), '-o', str(out), '--op', 'paraphrase'],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 2 and 'not found' in r.stderr


# --- the stage contract and loud failures ---

from synthbench.llm.engine import ChatResult
from synthbench.run.stage import RunContext, check_params
from synthbench.stages.augment import augment_stage

HAS_KINDS = 'error_kind' in getattr(ChatResult, '__dataclass_fields__', {})  # the engine labels its errors (after the engine change)


def test_augment_stage_adds_rows_keeps_lineage_and_drops_known_ids(seeds, tmp_path):
    spec = load_spec(TASK_API)
    with FakeOpenAIServer(responder=aug_responder) as srv:
        ctx = RunContext(spec=spec, llms={'main': _llm(srv, tmp_path)}, seed=3)
        res = augment_stage(seeds, ctx=ctx, op='paraphrase', n=2, rows=2)
        assert res.status == 'ok' and res.table.attrs == {} and json.dumps(res.report)
        t = res.table
        assert len(t) == 3 + 4 and t['id'].is_unique and t['id'].tolist()[:3] == seeds['id'].tolist()
        new = t[t['source'] == 'augmented']
        assert new['parent_id'].tolist() == [i for i in seeds['id'][:2] for _ in range(2)] and set(new['op']) == {'paraphrase'}
        assert res.report == {
            'op': 'paraphrase',
            'source_rows': 2,
            'new_rows': 4,
            'same_as_existing_dropped': 0,
            'failed': 0,
            'skipped_identical': 0,
        }
        again = augment_stage(t, ctx=ctx, op='paraphrase', n=2, from_seeds=True, rows=2)  # the same variants again: already in the table
        assert len(again.table) == len(t) and again.report['same_as_existing_dropped'] == 4 and again.n_dropped == 4
        assert set(again.dropped['drop_reason']) == {'same as a row already in the table'}
    assert "has no parameter 'per_row'" in check_params(augment_stage, {'per_row': 2})[0][1]


def test_augment_stage_refused_calls_fail_the_stage(seeds, tmp_path):
    with FakeOpenAIServer(responder=lambda b: {'status': 401, 'error': 'Incorrect API key provided'}) as srv:
        res = augment_stage(seeds, ctx=RunContext(llms={'main': _llm(srv, tmp_path)}), op='paraphrase')
    assert res.status == 'failed' and res.reason.startswith('3 of 3 augmentation call(s) failed: HTTP 401'), (
        res.reason
    )  # was: 3 invalid rows, success
    if HAS_KINDS:
        assert res.error_kind == 'auth'


def test_cli_augment_wrong_key_and_bad_output(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ('OPENAI_API_KEY', 'OPENAI_BASE_URL')}
    env.update(SYNTHBENCH_CACHE_DIR=str(tmp_path / 'c'), HF_HUB_OFFLINE='1')
    src = TASK_API / 'seeds.jsonl'
    out = tmp_path / 'aug.jsonl'
    with FakeOpenAIServer(responder=lambda b: {'status': 401, 'error': 'Incorrect API key provided'}) as srv:
        base = ['synthbench', 'augment', str(src), '--op', 'paraphrase', '--model', 'fake-model', '--base-url', srv.base_url]
        r = subprocess.run([*base, '-o', str(tmp_path / 'aug.txt')], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 2 and "cannot write the output as '.txt'" in r.stderr and len(srv.requests) == 0, r.stderr
        r = subprocess.run([*base, '-o', str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr
    line = [l for l in r.stderr.splitlines() if l.startswith('synthbench augment: failed')]
    assert len(line) == 1 and 'augmentation call(s) failed: HTTP 401' in line[0], r.stderr
    assert not out.exists()
