"Dedup: planted duplicates per method, keep-best, cross-set checks, the CLI, and the embedding cache."

import json, subprocess, sys
import numpy as np
import pandas as pd
import pytest
from synthbench.core import make_table
from synthbench.stages.dedup import (
    check_copying,
    check_leakage,
    cross_duplicates,
    dedup,
    dedup_summary,
    dup_groups,
    dup_groups_html,
    minhash_pairs,
    minhash_signatures,
    shingles,
    similar_pairs,
)

SENTENCES = [
    "My package was marked as delivered on Friday but it never arrived at my front door.",
    "The mobile app crashes every time I try to upload a profile picture from my gallery.",
    "I was charged twice for the annual plan and would like one of the payments refunded.",
    "Can you explain how to export all of my project data to a spreadsheet file?",
    "Our team needs single sign-on with Okta before we can roll the tool out company-wide.",
    "The password reset email takes more than an hour to arrive in my inbox.",
    "Please add a dark mode to the dashboard because the white background hurts my eyes.",
    "How many users can I invite to a workspace on the basic subscription tier?",
    "The search results page shows items that were deleted from the catalogue last week.",
    "I would like to change the billing address on my company account to our new office.",
    "Notifications stopped working on my Android phone after the latest update was installed.",
    "Is there an API endpoint for creating invoices programmatically from our accounting system?",
]


def table(texts, **cols):
    return make_table([{'text': t, 'label': 'x', **{k: v[i] for k, v in cols.items()}} for i, t in enumerate(texts)], source='generated')


def groups_of(df):
    "Set of frozensets of row positions in each duplicate group."
    ids = df['id'].tolist()
    out = {}
    for k, (i, d) in enumerate(zip(ids, df['dup_of'])):
        out.setdefault(d or i, set()).add(k)
    return {frozenset(g) for g in out.values() if len(g) > 1}


def test_exact_planted():
    texts = SENTENCES + ['  ' + SENTENCES[3].upper() + ' ', SENTENCES[7].replace(' ', '   ')]
    d = dedup(table(texts), 'exact')
    assert groups_of(d) == {frozenset({3, 12}), frozenset({7, 13})}
    assert set(d['dup_method']) == {'', 'exact'} and d.loc[d['dup_of'] != '', 'dup_sim'].tolist() == [1.0, 1.0]


@pytest.mark.parametrize('shingle', ['word', 'char'])
def test_minhash_planted(shingle):
    long = [s + ' ' + SENTENCES[(k + 5) % len(SENTENCES)] for k, s in enumerate(SENTENCES)]  # ~30 words each
    edited = long[2].replace('twice', 'two times'), long[9].replace('new office', 'new offices')
    d = dedup(table(long + list(edited)), 'minhash', minhash_threshold=0.7, shingle=shingle)
    assert groups_of(d) == {frozenset({2, 12}), frozenset({9, 13})}
    assert (d.loc[d['dup_of'] != '', 'dup_sim'] >= 0.7).all()


def test_minhash_datasketch_fallback_agrees(monkeypatch):
    sets = [shingles(s) for s in SENTENCES[:4]] + [shingles(SENTENCES[0].replace('Friday', 'Monday'))]
    D1 = minhash_signatures(sets, 256)
    monkeypatch.setitem(sys.modules, 'rensa', None)  # import rensa -> ImportError: datasketch path
    D2 = minhash_signatures(sets, 256)
    j1, j2 = (D1[0] == D1[4]).mean(), (D2[0] == D2[4]).mean()
    a, b = set(sets[0]), set(sets[4])
    true = len(a & b) / len(a | b)
    assert abs(j1 - true) < 0.12 and abs(j2 - true) < 0.12


def test_char_hash_path_matches_string_shingles():
    "The numpy char-window hashing gives the same Jaccard as the string shingle sets."
    from synthbench.stages.dedup import char_shingle_hashes, minhash_signatures_from_hashes

    a, b = SENTENCES[0], SENTENCES[0].replace('Friday', 'Thursday').replace('front door', 'door')
    fl, off = char_shingle_hashes([a, b, 'ab', ''])
    assert np.diff(off.astype(int)).tolist()[2:] == [1, 0]
    sa, sb = set(shingles(a, 'char')), set(shingles(b, 'char'))
    assert np.diff(off.astype(int))[0] == len(a) - 4  # one hash per 5-character window (a is already normalised-length)
    assert len(set(fl[: int(off[1])].tolist())) == len(sa)
    D = minhash_signatures_from_hashes(fl, off, 512)
    assert abs((D[0] == D[1]).mean() - len(sa & sb) / len(sa | sb)) < 0.08


def test_minhash_no_false_positives_on_distinct():
    i, j, s, _ = minhash_pairs(SENTENCES * 1 + [s[::-1] for s in SENTENCES], threshold=0.5)
    assert len(i) == 0


def test_embedding_planted_and_cache(tmp_path):
    from synthbench.llm.embed import get_embedder

    texts = SENTENCES + [
        'The app crashes whenever I try to upload a profile photo from my gallery.',
        'I got charged two times for the yearly plan; please refund one of the payments.',
    ]
    e = get_embedder()
    n0 = e.n_computed
    d = dedup(table(texts), 'embedding', embedding_threshold=0.85, cache_dir=tmp_path, progress=False)
    assert groups_of(d) == {frozenset({1, 12}), frozenset({2, 13})}
    assert e.n_computed - n0 == 14
    d2 = dedup(table(texts), 'embedding', embedding_threshold=0.85, cache_dir=tmp_path, progress=False)
    assert e.n_computed - n0 == 14, 'second run must come entirely from the cache'
    assert d2['dup_of'].tolist() == d['dup_of'].tolist()


def test_embedding_ann_paths_match_exact():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3000, 64)).astype(np.float32)
    src = rng.choice(2900, 60, replace=False)
    X[2940:] = X[src] + 0.1 * rng.standard_normal((60, 64)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    df = table([f'row {k}' for k in range(3000)])
    a = dedup(df, 'embedding', embeddings=X, embedding_threshold=0.95)
    assert len(groups_of(a)) == 60
    for ann in ('ivf', 'usearch'):
        b = dedup(df, 'embedding', embeddings=X, embedding_threshold=0.95, exact_max=1000, ann=ann)
        assert groups_of(a) == groups_of(b), ann
    with pytest.raises(ValueError, match='embeddings has 5 rows'):
        dedup(df, 'embedding', embeddings=X[:5])


def test_keep_best_by_judge_score_and_validity():
    texts = [SENTENCES[0], SENTENCES[0].lower(), SENTENCES[0] + ' ', SENTENCES[1]]
    d = dedup(table(texts, judge_overall=[2, 5, 4, 1]), 'exact')
    assert d['dup_of'].tolist() == [d.loc[1, 'id'], '', d.loc[1, 'id'], '']
    d = dedup(table(texts, judge_overall=[2, 5, 4, 1], valid=[True, False, True, True]), 'exact')
    assert d['dup_of'].tolist()[1] != '' and d.loc[2, 'dup_of'] == '', 'an invalid row is never kept over a valid twin'
    d = dedup(table(texts), 'exact')  # no score column: the first is kept
    assert d.loc[0, 'dup_of'] == '' and (d.loc[1:2, 'dup_of'] == d.loc[0, 'id']).all()
    g = dup_groups(d)
    assert g['kept'].tolist() == [True, False, False] and g['group'].nunique() == 1
    s = dedup_summary(d)
    assert (s.n_rows, s.n_kept, s.by_method['exact'], s.n_groups, s.largest) == (4, 2, 2, 1, [3])
    assert '<table>' in s._repr_html_()


def test_chat_rows_and_roles():
    mk = lambda u, a: {'messages': [{'role': 'user', 'content': u}, {'role': 'assistant', 'content': a}]}
    df = make_table([mk(SENTENCES[0], 'Sorry, let me check.'), mk(SENTENCES[0], 'We will refund you.')])
    assert (dedup(df, 'exact')['dup_of'] == '').all()
    assert (dedup(df, 'exact', roles=['user'])['dup_of'] != '').sum() == 1


def test_dup_groups_html_escapes():
    d = dedup(table(['<img src=x onerror=alert(1)> hi', '<IMG src=x onerror=alert(1)> HI']), 'exact')
    h = dup_groups_html(d)
    assert '<img' not in h.lower() and '&lt;img' in h.lower()


def test_cross_set_copying_and_leakage(tmp_path):
    seeds = table(SENTENCES[:6])
    gen = table(
        [
            SENTENCES[0].upper(),  # exact copy
            SENTENCES[1].replace('every time', 'each time'),  # near copy (chars)
            'The app crashes whenever I try to upload a profile photo from my gallery.',  # paraphrase
            SENTENCES[8],
            SENTENCES[9],
        ]
    )  # new
    r = check_copying(gen, seeds, minhash_threshold=0.5, shingle='char', embedding_threshold=0.85, cache_dir=tmp_path, progress=False)
    p = r.pairs
    assert p['a_id'].tolist() == gen['id'][:3].tolist()
    assert p['b_id'].tolist() == [seeds['id'][0], seeds['id'][1], seeds['id'][1]]
    assert p['method'].tolist() == ['exact', 'minhash', 'embedding']
    assert p['sim'].iloc[0] == 1.0 and (p['sim'] >= 0.5).all()
    assert r.n_flagged == 3 and abs(r.rate - 0.6) < 1e-9 and 'copying' in repr(r).lower()
    # leakage: one table with a split column
    both = pd.concat([gen.assign(split='train'), seeds.assign(split='eval')], ignore_index=True)
    lk = check_leakage(both, methods=['exact', 'minhash'], minhash_threshold=0.5, shingle='char')
    assert (lk.n_a, lk.n_b, lk.n_flagged) == (5, 6, 2)
    assert len(cross_duplicates(table(['nothing alike here at all']), seeds, methods=['exact', 'minhash'])) == 0


def test_cross_set_html_escapes():
    a, b = table(['<script>x()</script> hello']), table(['<SCRIPT>x()</SCRIPT> HELLO'])
    h = check_leakage(a, b, methods='exact')._repr_html_()
    assert '<script>' not in h.lower() and '&lt;script&gt;' in h.lower()


def _write_jsonl(path, rows):
    path.write_text(''.join(json.dumps(r) + '\n' for r in rows))


def test_cli_dedup(tmp_path):
    rows = [{'text': t, 'label': 'x', 'judge_score': k} for k, t in enumerate(SENTENCES)]
    rows += [
        {'text': SENTENCES[4].lower(), 'label': 'x', 'judge_score': 99},
        {'text': SENTENCES[5] + ' ' + SENTENCES[6], 'label': 'x'},
        {'text': SENTENCES[5] + ' ' + SENTENCES[6] + '!!', 'label': 'x'},
    ]
    inp = tmp_path / 'in.jsonl'
    _write_jsonl(inp, rows)
    r = subprocess.run(
        ['synthbench', 'dedup', str(inp), '-o', str(tmp_path / 'out.parquet'), '--method', 'minhash', '--threshold', '0.9'],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert 'minhash: 2' in r.stdout and '15 rows, 13 kept' in r.stdout  # the lower-cased copy is a MinHash twin too
    o = pd.read_parquet(tmp_path / 'out.parquet')
    assert sorted(o.loc[o['dup_of'] != '', 'text']) == [SENTENCES[4], SENTENCES[5] + ' ' + SENTENCES[6] + '!!']
    r = subprocess.run(
        ['synthbench', 'dedup', str(inp), '-o', str(tmp_path / 'out.jsonl'), '--method', 'exact'],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert 'exact: 1' in r.stdout
    out = [json.loads(l) for l in (tmp_path / 'out.jsonl').read_text().splitlines()]
    assert len(out) == 15 and all('dup_of' in o and 'dup_sim' in o for o in out)
    marked = [o for o in out if o['dup_of']]
    assert len(marked) == 1 and marked[0]['text'] == SENTENCES[4] and marked[0]['dup_method'] == 'exact'  # the 99-scored copy is kept
    r = subprocess.run(
        ['synthbench', 'dedup', str(inp), '-o', str(tmp_path / 'kept.jsonl'), '--method', 'exact', '--drop'],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0 and len((tmp_path / 'kept.jsonl').read_text().splitlines()) == 14
    # bad input: clear error naming the file, non-zero exit
    bad = tmp_path / 'bad.jsonl'
    bad.write_text('{"text": "ok"}\n{not json\n')
    r = subprocess.run(['synthbench', 'dedup', str(bad), '-o', str(tmp_path / 'o.jsonl')], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and 'bad.jsonl' in r.stderr
    r = subprocess.run(
        ['synthbench', 'dedup', str(inp), '-o', str(tmp_path / 'o.jsonl'), '--threshold', '0.5'],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and '--method minhash or embedding' in r.stderr
    r = subprocess.run(['synthbench', 'dedup', '--help'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and 'dup_of' in r.stdout and '--drop' in r.stdout and '--embed-model' in r.stdout
    # --embed-model: checked before the input is read, one line naming the fix, exit 2
    for args, says in [
        (['--embed-model', 'all-MiniLM-L6-v2@bf17'], "unknown precision 'bf17' after '@'; use all-MiniLM-L6-v2@float32"),
        (['--embed-model', 'no-such-model'], 'synthbench never downloads models'),
        (['--embed-model', 'openai:text-embedding-3-small'], 'needs a run'),
        (['--method', 'exact', '--embed-model', 'all-MiniLM-L6-v2@bf16'], '--embed-model applies to --method embedding'),
    ]:
        r = subprocess.run(
            ['synthbench', 'dedup', str(tmp_path / 'missing.jsonl'), '-o', str(tmp_path / 'o.jsonl'), *args],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


@pytest.mark.slow
def test_cli_dedup_all_with_embeddings(tmp_path, monkeypatch):
    monkeypatch.setenv('SYNTHBENCH_CACHE_DIR', str(tmp_path / 'cache'))
    rows = [{'text': t, 'label': 'x'} for t in SENTENCES] + [
        {'text': 'The app crashes whenever I try to upload a profile photo from my gallery.', 'label': 'x'}
    ]
    inp = tmp_path / 'in.jsonl'
    _write_jsonl(inp, rows)
    r = subprocess.run(
        ['synthbench', 'dedup', str(inp), '-o', str(tmp_path / 'out.jsonl'), '--embedding-threshold', '0.85', '--no-progress'],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert 'embedding: 1' in r.stdout
    assert (tmp_path / 'cache' / 'embeddings' / 'embeddings.sqlite').exists()
    r = subprocess.run(
        ['synthbench', 'dedup', str(inp), '-o', str(tmp_path / 'bf16.jsonl'), '--embedding-threshold', '0.85', '--no-progress']
        + ['--embed-model', 'all-MiniLM-L6-v2@bf16'],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    a, b = (pd.read_json(tmp_path / f, lines=True) for f in ('out.jsonl', 'bf16.jsonl'))
    assert a['dup_of'].tolist() == b['dup_of'].tolist() and (a['dup_sim'] - b['dup_sim']).abs().max() < 1e-3
    from synthbench.llm.embed import EmbeddingCache

    cache = EmbeddingCache(tmp_path / 'cache' / 'embeddings')  # the bfloat16 vectors are kept apart from the float32 ones
    assert cache.count('st:all-MiniLM-L6-v2') == cache.count('st:all-MiniLM-L6-v2@bfloat16') == len(rows)


# ---------- the example, not the scaffolding ----------

from synthbench.run.stage import RunContext, StageError, check_params
from synthbench.stages.dedup import compare_texts, dedup_stage, scaffold_turns
from pathlib import Path

SEEDS = Path(__file__).parent.parent / 'seeds'


def _task_api_with_system():
    from synthbench.spec import load_spec

    spec = load_spec(SEEDS / 'task_api')
    s = spec.seeds()
    sysm = {'role': 'system', 'content': spec.system_prompt}
    return spec, s.assign(messages=[[sysm, *m] for m in s['messages']])


_EDITS = [
    lambda t: t.lower(),
    lambda t: t + ' please',
    lambda t: t.replace(' ', '  ', 1),
    lambda t: t.rstrip('?.!') + '!',
    lambda t: 'Hi, ' + t,
]


def _near_copies(df):
    "One light edit of each row's user turn (new ids)."
    msgs = [[{**x, 'content': _EDITS[k % 5](x['content'])} if x['role'] == 'user' else x for x in m] for k, m in enumerate(df['messages'])]
    return make_table([{'messages': m, 'category': c} for m, c in zip(msgs, df['category'])], source='generated')


def test_system_prompt_is_not_compared_by_default():
    spec, df = _task_api_with_system()
    assert len(df) == 20 and len(spec.system_prompt) > 300
    assert (dedup(df, ['exact', 'minhash'], roles='all', progress=False)['dup_of'] != '').sum() >= 15  # the bug: 18 of 20 "near-copies"
    assert (dedup(df, ['exact', 'minhash'], progress=False)['dup_of'] == '').all()
    r = dedup_stage(df, ctx=RunContext(spec=spec))  # all three methods, embeddings included
    assert r.ok and r.report['duplicates'] == 0 and r.report['by_method'] == {'exact': 0, 'minhash': 0, 'embedding': 0}
    assert r.report['ignored']['system_turn_rows'] == 20 and r.report['ignored']['shared_turns'] == []
    assert not r.table.attrs


def test_near_copies_with_system_prompt_are_still_flagged():
    _, df = _task_api_with_system()
    near = _near_copies(df)
    both = pd.concat([df, near], ignore_index=True)
    d = dedup_stage(both, ctx=RunContext(), methods='exact,minhash').table
    assert (d['dup_of'][:20] == '').all()  # no original is taken for a copy of another
    pairs = [d['dup_of'][20 + k] == d['id'][k] or d['dup_of'][k] == d['id'][20 + k] for k in range(20)]
    assert sum(pairs) == 20  # recall 20/20, each to its own seed


def test_shared_turn_rule():
    pre = [{'role': 'user', 'content': 'Example: add milk'}, {'role': 'assistant', 'content': 'Created: milk'}]
    qa = lambda q, a: [{'role': 'user', 'content': q}, {'role': 'assistant', 'content': a}]
    recs = [{'messages': pre + qa(f'{SENTENCES[k]}', f'Done {k}.')} for k in range(6)]
    assert [s['text'] for s in scaffold_turns(recs)] == ['example: add milk', 'created: milk']
    texts, ign = compare_texts(recs)
    assert texts[0] == f'user: {SENTENCES[0]}\nassistant: Done 0.' and len(ign['shared_turns']) == 2
    assert scaffold_turns(recs[:2]) == []  # fewer than 3 examples: nothing is scaffolding
    copies = [{'messages': qa('same question', 'same answer')}] * 6 + recs[:2]
    assert scaffold_turns(copies) == []  # copies of one example are not scaffolding
    assert (dedup(make_table(copies), 'exact', progress=False)['dup_of'] != '').sum() == 5
    # the same single-turn question with different answers is mode collapse, not scaffolding: still compared
    same_q = [{'messages': qa(SENTENCES[0], f'We will look into it, ticket {k}.')} for k in range(4)] + recs[3:6]
    texts, ign = compare_texts(same_q)
    assert texts[0].startswith(f'user: {SENTENCES[0]}') and ign['shared_turns'] == [] and ign['rows_compared_whole'] == 4
    assert (dedup(make_table(same_q), 'minhash', progress=False)['dup_of'] != '').sum() == 3
    # a few-shot preamble shared by every row no longer makes rows look alike
    d = dedup(make_table(recs), ['exact', 'minhash'], minhash_threshold=0.5, progress=False)
    assert (d['dup_of'] == '').all()


def test_dedup_stage_parameters_are_checked():
    df = table(SENTENCES[:4])
    assert check_params(dedup_stage, {'method': 'exact'}) == [
        ('method', "stage 'dedup_stage' has no parameter 'method'; did you mean 'methods'?")
    ]
    with pytest.raises(StageError, match="did you mean 'minhash'") as e:
        dedup_stage(df, ctx=RunContext(), methods=['minhsh'])
    assert e.value.kind == 'config'
    with pytest.raises(StageError, match='threshold applies to one'):
        dedup_stage(df, ctx=RunContext(), threshold=0.8)
    with pytest.raises(StageError, match='minhash_threshold=1.5'):
        dedup_stage(df, ctx=RunContext(), methods='minhash', minhash_threshold=1.5)
    r = dedup_stage(df, ctx=RunContext(), methods='minhash', threshold=0.9)
    assert r.report['thresholds'] == {'minhash': 0.9} and r.report['methods'] == ['minhash']


def test_cli_dedup_leaves_out_the_system_prompt(tmp_path):
    from synthbench.formats import save_table

    _, df = _task_api_with_system()
    inp = tmp_path / 'sys.jsonl'
    save_table(df, inp)
    r = subprocess.run(
        ['synthbench', 'dedup', str(inp), '-o', str(tmp_path / 'o.jsonl'), '--method', 'exact,minhash'],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert '20 rows, 20 kept, 0 duplicates' in r.stdout and 'compared without: system turns (20 rows)' in r.stdout
    r = subprocess.run(
        ['synthbench', 'dedup', str(inp), '-o', str(tmp_path / 'o.jsonl'), '--method', 'exakt'], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 2 and "did you mean 'exact'" in r.stderr and 'Traceback' not in r.stderr
    r = subprocess.run(['synthbench', 'dedup', str(inp), '-o', str(tmp_path / 'o.txt')], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'o.txt' in r.stderr and 'Traceback' not in r.stderr


def test_dedup_stage_marks_copies_of_seeds_not_in_the_table():
    "A light edit of a hand-written seed is a copy even when the seeds are not in the table (they join later, or never)."
    from synthbench.spec import load_spec
    from synthbench.run.stage import RunContext
    from synthbench.core import make_table
    from synthbench.stages.dedup import dedup_stage

    spec = load_spec(Path(__file__).resolve().parents[1] / 'seeds' / 'task_api')
    seeds = spec.seeds()
    msgs = [dict(m) for m in seeds.iloc[0]['messages']]
    u = next(m for m in msgs if m['role'] == 'user')
    u['content'] = u['content'] + ' thanks'
    other = [
        {'role': 'user', 'content': 'remind me to repot the fern in the garden shed next weekend'},
        {'role': 'assistant', 'content': "Created task: 'Repot the fern' | Priority: medium | Due: 2025-01-18 (Saturday)"},
    ]
    gen = make_table([{'messages': msgs, 'source': 'generated'}, {'messages': other, 'source': 'generated'}])
    res = dedup_stage(gen, ctx=RunContext(spec=spec), methods=['exact', 'minhash'])
    assert res.table['dup_of'].fillna('').tolist() == [seeds.iloc[0]['id'], ''] and res.report['copies_of_seeds'] == 1
    assert res.table['dup_method'].iloc[0].endswith('(seed)')
    assert dedup_stage(gen, ctx=RunContext(spec=spec), methods=['exact', 'minhash'], against_seeds=False).report['copies_of_seeds'] == 0


# ---------- paid embeddings go through the run's client: its ledger books them, its budget refuses them (tests/fake_openai.py)

from fake_openai import FakeOpenAIServer, embedding_tokens  # noqa: E402
from synthbench.llm.cost import price_for  # noqa: E402
from synthbench.llm.engine import LLM  # noqa: E402
from synthbench.run.workbench import run_stage  # noqa: E402

EMB_KEY = 'sk-' + 'test-DEDUPEMB-0123456789abcd'  # a fake key, split so secret scanners don't flag it
SMALL = 'text-embedding-3-small'


@pytest.fixture
def emb_srv(tmp_path, monkeypatch):
    monkeypatch.setenv('SYNTHBENCH_CACHE_DIR', str(tmp_path / 'home_cache'))  # the embedding cache lands in tmp_path
    with FakeOpenAIServer() as s:
        yield s


def _run_llm(srv, tmp_path, budget_usd=1.0, **kw):
    "A run's client (chat model gpt-4o-mini), its ledger in tmp_path/llm."
    return LLM(
        model='gpt-4o-mini', base_url=srv.base_url, api_key=EMB_KEY, cache_dir=tmp_path / 'llm', budget_usd=budget_usd, progress=False, **kw
    )


def _emb_table():
    return table(SENTENCES[:6] + [SENTENCES[1], SENTENCES[4]])  # rows 6, 7 copy rows 1, 4 word for word


def test_dedup_stage_books_openai_embeddings_in_the_runs_ledger(emb_srv, tmp_path):
    llm = _run_llm(emb_srv, tmp_path)
    ctx = RunContext(llms={'main': llm})
    res = run_stage(dedup_stage, _emb_table(), {'methods': ['embedding'], 'embed_model': f'openai:{SMALL}'}, ctx)
    assert res.ok, res.line()
    assert res.table['dup_of'].fillna('').astype(bool).tolist() == [False] * 6 + [True, True]
    uniq = SENTENCES[:6]  # repeats are embedded once
    billed = sum(embedding_tokens(t) for t in uniq)
    usd = billed * price_for(SMALL)[0] / 1e6
    assert emb_srv.n_embed_requests >= 1 and emb_srv.embed_tokens == billed
    assert {b['model'] for b in emb_srv.embed_requests} == {SMALL}
    assert llm.spent_usd == pytest.approx(usd) and llm.ledger.reserved == 0
    e = res.report['embeddings']
    assert e['usd'] == pytest.approx(usd) and e['texts'] == 6 and e['llm'] == 'main' and e['base_url'] == llm.base_url
    # a re-run (a new session, same caches): every vector comes from the embedding cache, nothing sent, nothing booked
    n = emb_srv.n_embed_requests
    llm2 = _run_llm(emb_srv, tmp_path)
    res2 = run_stage(
        dedup_stage, _emb_table(), {'methods': ['embedding'], 'embed_model': f'openai:{SMALL}'}, RunContext(llms={'main': llm2})
    )
    assert res2.ok and res2.table['dup_of'].tolist() == res.table['dup_of'].tolist()
    assert emb_srv.n_embed_requests == n and res2.report['embeddings']['usd'] == 0 and llm2.spent_usd == pytest.approx(usd)
    for f in tmp_path.rglob('*'):  # the key is never written anywhere
        if f.is_file():
            assert EMB_KEY.encode() not in f.read_bytes(), f


def test_dedup_stage_embedding_over_budget_fails_before_any_request(emb_srv, tmp_path):
    ctx = RunContext(llms={'main': _run_llm(emb_srv, tmp_path, budget_usd=1e-9)})
    res = run_stage(dedup_stage, _emb_table(), {'methods': ['exact', 'embedding'], 'embed_model': f'openai:{SMALL}'}, ctx)
    assert res.status == 'failed' and res.error_kind == 'budget' and '\n' not in res.reason, res.line()
    assert emb_srv.n_embed_requests == 0 and ctx.llm().spent_usd == 0
    assert 'dup_of' not in res.table  # the input comes back as it was, not half marked


def test_dedup_stage_embed_llm_names_the_client_and_endpoint_is_checked(emb_srv, tmp_path, monkeypatch):
    other = _run_llm(emb_srv, tmp_path)
    ctx = RunContext(llms={'main': other, 'emb': other})
    p = {'methods': ['embedding'], 'embed_model': f'openai:{SMALL}'}
    assert run_stage(dedup_stage, _emb_table(), {**p, 'embed_llm': 'emb', 'embed_base_url': emb_srv.base_url + '/'}, ctx).ok

    def fails(params, ctx=ctx):
        r = run_stage(dedup_stage, _emb_table(), params, ctx)
        assert r.status == 'failed' and r.error_kind == 'config' and '\n' not in r.reason, r.line()
        return r.reason

    n = emb_srv.n_embed_requests
    assert 'sends to' in fails({**p, 'embed_llm': 'emb', 'embed_base_url': 'https://api.openai.com/v1'})  # not the named endpoint
    assert "client 'judge'" in fails({**p, 'embed_llm': 'judge'})  # no such client
    assert 'add `llm:`' in fails(p, RunContext())  # a run without clients
    assert 'OpenAI-compatible embeddings only' in fails({'methods': ['embedding'], 'embed_llm': 'emb'})  # local model + embed_llm
    assert 'no price is known' in fails({**p, 'embed_model': 'openai:my-embedder'})  # budget needs a price
    assert emb_srv.n_embed_requests == n  # none of these sent anything
    assert check_params(dedup_stage, {'embed_llm': 'main', 'embed_base_url': None}) == []


def test_dedup_stage_local_embeddings_unchanged_no_client_needed():
    "The local default needs no client and books nothing (exact + minhash only here: no model load)."
    res = run_stage(dedup_stage, _emb_table(), {'methods': ['exact', 'minhash']}, RunContext())
    assert res.ok and 'embeddings' not in res.report and res.report['duplicates'] == 2


def test_pipeline_dedup_openai_embeddings_count_against_the_runs_budget(emb_srv, tmp_path, monkeypatch):
    from synthbench.formats import save_table
    from synthbench.run.workbench import run_pipeline

    monkeypatch.setenv('S6_EMB_KEY', EMB_KEY)
    inp = tmp_path / 'in.jsonl'
    save_table(_emb_table(), inp)

    def cfg(budget):
        return {
            'name': f'emb{budget}',
            'input': str(inp),
            'runs_dir': str(tmp_path / 'runs'),
            'llm': {
                'model': 'gpt-4o-mini',
                'base_url': emb_srv.base_url,
                'api_key_env': 'S6_EMB_KEY',
                'budget_usd': budget,
                'cache_dir': str(tmp_path / 'llm'),
                'progress': False,
            },
            'stages': [{'dedup': {'methods': ['embedding'], 'embed_model': f'openai:{SMALL}'}}],
        }

    usd = sum(embedding_tokens(t) for t in SENTENCES[:6]) * price_for(SMALL)[0] / 1e6
    man = run_pipeline(cfg(1.0), verbose=False).manifest
    assert man['status'] == 'done' and man['this_session']['usd'] == pytest.approx(usd, abs=1e-6), man
    n = emb_srv.n_embed_requests
    assert n >= 1
    # a re-run under another name (same caches): every vector comes from the embedding cache, nothing sent, nothing booked
    man = run_pipeline({**cfg(1.0), 'name': 'emb_again'}, verbose=False).manifest
    assert man['status'] == 'done' and man['this_session']['usd'] == 0 and emb_srv.n_embed_requests == n
    # new texts and a budget below their estimate: the stage fails with kind budget before any request
    inp2 = tmp_path / 'in2.jsonl'
    save_table(table(SENTENCES[6:]), inp2)
    c = cfg(1e-9)
    c['input'] = str(inp2)
    c['llm']['cache_dir'] = str(tmp_path / 'llm2')
    man = run_pipeline(c, verbose=False).manifest
    st = man['stages'][0]
    assert man['status'] == 'failed' and st['status'] == 'failed' and st['error_kind'] == 'budget', st
    assert emb_srv.n_embed_requests == n and man['this_session']['usd'] == 0
