"TSTR on real embedded data (chatterbot-corpus topics, all-MiniLM-L6-v2): sanity, CLI JSON, errors."

import json, os, subprocess
import numpy as np, pandas as pd, pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
from synthbench.analysis.tstr import tstr, chatterbot_topics, _stratified_split, TSTRResult
from synthbench.cli import main


@pytest.fixture(scope='module')
def split():
    "A third of the real topic set plays 'synthetic'; two thirds are the real test data."
    real = chatterbot_topics()
    a, b = _stratified_split(real['label'].tolist(), 2 / 3, seed=3)
    return real.iloc[a].reset_index(drop=True), real.iloc[b].reset_index(drop=True)


@pytest.fixture(scope='module')
def files(split, tmp_path_factory):
    d = tmp_path_factory.mktemp('tstr')
    syn, real = split
    syn[['text', 'label']].to_json(d / 'syn.jsonl', orient='records', lines=True)
    real[['text', 'label']].to_csv(d / 'real.csv', index=False)
    real[['text', 'label']].rename(columns={'text': 'utterance', 'label': 'intent'}).to_parquet(d / 'real.parquet')
    return d


def test_real_subset_matches_reference(split):
    syn, real = split
    r = tstr(syn, real)
    assert isinstance(r, TSTRResult)
    assert r.accuracy > 0.7 and r.reference['accuracy'] > 0.7
    assert abs(r.macro_f1 - r.reference['macro_f1']) < 0.12, r
    # reference and test parts are disjoint parts of the real data
    assert r.n_test + r.reference['n_train'] <= len(real)
    assert int(r.confusion.values.sum()) == r.n_test
    assert list(r.mix['real_share']) == [0, 0.25, 0.5, 0.75, 1.0]
    assert (r.mix['n_real'] + r.mix['n_synthetic']).nunique() == 1  # one fixed size across the sweep
    h = r._repr_html_()
    assert 'macro-F1' in h and 'confusion' in h


def test_wrong_labels_score_low(split):
    syn, real = split
    good = tstr(syn, real, ratios=None)
    bad = tstr(syn.assign(label=np.random.default_rng(1).permutation(syn['label'].values)), real, ratios=None)
    assert bad.macro_f1 < good.macro_f1 - 0.3
    assert bad.ci['gap'][0] > 0.2 and good.ci['gap'][0] < 0 < good.ci['gap'][1] + 0.05
    # the reference does not depend on the synthetic labels
    assert bad.reference['macro_f1'] == pytest.approx(good.reference['macro_f1'])


def test_chat_rows_use_user_turns(split):
    syn, real = split
    chat = pd.DataFrame(
        {
            'messages': [[{'role': 'user', 'content': t}, {'role': 'assistant', 'content': 'ok'}] for t in syn['text']],
            'category': syn['label'],
        }
    )
    r = tstr(chat, real[['text', 'label']].rename(columns={'label': 'category'}), label_col='category', ratios=None)
    assert r.accuracy == pytest.approx(tstr(syn, real, ratios=None).accuracy)
    with pytest.raises(ValueError, match="--label-col category"):
        tstr(chat, real)


def test_cli_json(files):
    p = subprocess.run(
        ['synthbench', 'tstr', '--train', str(files / 'syn.jsonl'), '--test', str(files / 'real.csv'), '--ratios', '0,1'],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    for k in ('accuracy', 'macro_f1', 'per_class_f1', 'confusion', 'reference', 'mix', 'ci'):
        assert k in out
    assert 0 <= out['accuracy'] <= 1 and set(out['per_class_f1']) == {'ai', 'coding', 'emotion', 'psychology', 'trivia'}
    assert [m['real_share'] for m in out['mix']] == [0, 1]


def test_cli_missing_column(files, capsys):
    rc = main(
        [
            'tstr',
            '--train',
            str(files / 'syn.jsonl'),
            '--test',
            str(files / 'real.parquet'),
            '--text-col',
            'utterance',
            '--label-col',
            'intent',
            '--no-reference',
            '--out',
            str(files / 'r.json'),
        ]
    )
    # the synthetic file has 'text'/'label', not 'utterance'/'intent': clear error, not a crash
    err = capsys.readouterr().err
    assert rc == 2 and 'syn.jsonl' in err and "'intent'" in err and '--label-col' in err


def test_cli_unknown_label(files, split, tmp_path, capsys):
    syn, _ = split
    syn[syn.label != 'emotion'][['text', 'label']].to_json(tmp_path / 'syn.jsonl', orient='records', lines=True)
    rc = main(['tstr', '--train', str(tmp_path / 'syn.jsonl'), '--test', str(files / 'real.csv')])
    err = capsys.readouterr().err
    assert rc == 2 and "['emotion']" in err and 'real.csv' in err and 'on-unseen' in err
    rc = main(
        [
            'tstr',
            '--train',
            str(tmp_path / 'syn.jsonl'),
            '--test',
            str(files / 'real.csv'),
            '--on-unseen',
            'drop',
            '--ratios',
            '',
            '--out',
            str(tmp_path / 'o.json'),
        ]
    )
    out = json.loads((tmp_path / 'o.json').read_text())
    assert rc == 0 and 'emotion' not in out['per_class_f1'] and any('unseen' in n for n in out['notes'])


def test_cli_missing_file(files, capsys):
    rc = main(['tstr', '--train', str(files / 'nope.jsonl'), '--test', str(files / 'real.csv')])
    err = capsys.readouterr().err
    assert rc == 2 and 'nope.jsonl' in err and 'no such file' in err


def test_cli_bad_files_name_file_line_and_fix(files, tmp_path, capsys):
    "Every format error comes from synthbench.formats: one line naming the file, the line and the fix."
    good = (files / 'syn.jsonl').read_text().splitlines()
    (tmp_path / 'broken.jsonl').write_text('\n'.join([good[0], '{"text": "cut off', *good[1:]]) + '\n')
    rc = main(['tstr', '--train', str(tmp_path / 'broken.jsonl'), '--test', str(files / 'real.csv')])
    err = capsys.readouterr().err
    assert rc == 2 and 'broken.jsonl, line 2: not valid JSON' in err and 'Fix:' in err and len(err.strip().splitlines()) == 1
    (tmp_path / 'syn.txt').write_text('hello\n')
    rc = main(['tstr', '--train', str(tmp_path / 'syn.txt'), '--test', str(files / 'real.csv')])
    err = capsys.readouterr().err
    assert rc == 2 and "syn.txt: unknown file type '.txt'" in err and '.jsonl' in err
    sg = tmp_path / 'sharegpt.jsonl'  # ShareGPT rows become chat rows: the user turns are the texts
    pd.DataFrame(
        {
            'conversations': [
                [{'from': 'human', 'value': t}, {'from': 'gpt', 'value': 'ok'}]
                for t in pd.read_json(files / 'syn.jsonl', lines=True)['text']
            ],
            'label': pd.read_json(files / 'syn.jsonl', lines=True)['label'],
        }
    ).to_json(sg, orient='records', lines=True)
    r = tstr(sg, files / 'real.csv', ratios=None, n_boot=0)
    assert r.n_train == len(good) and r.macro_f1 > 0.5


# ---- 'openai:' embeddings through a run's client: booked in its ledger, refused by its budget (tests/fake_openai.py)


def test_openai_embeddings_through_llm_are_booked_and_budgeted(split, tmp_path, monkeypatch):
    from fake_openai import FakeOpenAIServer, embedding_tokens
    from synthbench.llm.cost import price_for
    from synthbench.llm.engine import LLM
    from synthbench.run.stage import StageError

    monkeypatch.setenv('SYNTHBENCH_CACHE_DIR', str(tmp_path / 'home_cache'))
    key, small = 'sk-' + 'test-TSTREMB-0123456789abcd', 'text-embedding-3-small'
    syn, real = (d.head(40) for d in split)

    def llm(budget, cache='llm'):
        return LLM(model='gpt-4o-mini', base_url=srv.base_url, api_key=key, cache_dir=tmp_path / cache, budget_usd=budget, progress=False)

    with FakeOpenAIServer() as srv:
        with pytest.raises(ValueError, match='OpenAI-compatible embeddings only'):
            tstr(syn, real, llm=llm(1.0))  # local model + llm
        assert srv.n_embed_requests == 0
        # a budget below the estimate: refused before any request
        with pytest.raises(StageError) as e:
            tstr(syn, real, model=f'openai:{small}', llm=llm(1e-9, 'llm_low'), ratios=None, n_boot=0)
        assert e.value.kind == 'budget' and srv.n_embed_requests == 0
        c = llm(1.0)
        r = tstr(syn, real, model=f'openai:{small}', llm=c, ratios=None, n_boot=0)
        assert r.n_train == 40 and r.params['model'] == f'openai:{small}'
        texts = set(syn['text']) | set(real['text'])  # every distinct text embedded once (one cache for both sets)
        billed = sum(embedding_tokens(t) for t in texts)
        assert srv.embed_tokens == billed and c.spent_usd == pytest.approx(billed * price_for(small)[0] / 1e6) and c.ledger.reserved == 0
        n = srv.n_embed_requests
        c2 = llm(1.0)  # a re-run: all vectors cached, nothing sent, nothing booked
        assert tstr(syn, real, model=f'openai:{small}', llm=c2, ratios=None, n_boot=0).accuracy == r.accuracy
        assert srv.n_embed_requests == n and c2.spent_usd == pytest.approx(c.spent_usd)
