"Integration tests of the audit: findings on planted problems, JSON metrics, HTML escaping, CLI, the UMAP + model path."
import json, os, subprocess, sys
import numpy as np, pandas as pd, pytest
from synthbench.audit import audit, cli_audit, TABS
from synthbench.metrics import make_demo_table, field_texts, tfidf_embeddings
from synthbench.core import make_table

@pytest.fixture(scope='module')
def demo(): return make_demo_table(150)

@pytest.fixture(scope='module')
def demo_report(demo): return audit(demo, embed='tfidf', projection='pca', progress=False)

def test_planted_collapse_is_flagged(demo_report):
    f = demo_report.findings
    assert any(x.startswith('Round 2') and 'fell' in x for x in f), f
    assert any(x.startswith('Round 2') and 'cluster' in x for x in f), f
    assert not any(x.startswith('Round 1') for x in f), f

def test_healthy_table_has_no_collapse_flags():
    rep = audit(make_demo_table(150, collapse=False), embed='tfidf', projection='pca', progress=False)
    assert not any('fell' in x or 'cluster' in x or 'near-duplicate' in x for x in rep.findings), rep.findings

def test_metrics_are_plain_json(demo_report):
    m = json.loads(json.dumps(demo_report.metrics, allow_nan=False))
    assert m['n'] == 150
    for k in ('balance', 'length', 'vocabulary', 'embedding', 'by_round', 'bias'): assert k in m
    assert 0 <= m['embedding']['near_duplicate_rate'] <= 1 and m['embedding']['vendi_score'] >= 1
    assert m['by_round']['2']['top_cluster_share'] > m['by_round']['1']['top_cluster_share']

def test_spec_targets_from_real_spec(demo):
    "Balance against the seeds/task_api spec: categories it asks for but the table lacks are under-filled with count 0."
    from synthbench.spec import load_spec
    spec = load_spec(os.path.join(os.path.dirname(__file__), '..', 'seeds', 'task_api'))
    seeds = spec.seeds()
    rep = audit(seeds, spec=spec, embed='tfidf', projection='pca', progress=False)
    bal = rep.tables['balance']
    assert set(spec.axes['category']) <= set(bal.query("axis == 'category'")['value'])
    assert 'phrasing' in set(bal['axis'])
    wrong = audit(demo, spec=spec, embed='tfidf', projection='pca', progress=False)
    assert (wrong.tables['balance'].query("axis == 'category' and value == 'create'")['count'] == 0).all()
    assert any('category = create' in f and 'under-filled' in f for f in wrong.findings)

def test_html_report_escapes_generated_script(tmp_path):
    evil = make_table([{'messages': [{'role': 'user', 'content': f'<script>alert({i})</script> q{i}'},
                                     {'role': 'assistant', 'content': '</script><img src=x onerror="window.__pwned=1">'}],
                        'category': '<i>c</i>', 'round': i % 3} for i in range(20)])
    rep = audit(evil, embed='tfidf', projection='pca', progress=False)
    page = rep.to_html(tmp_path / 'r.html')
    assert (tmp_path / 'r.html').read_text() == page
    assert '<script>alert' not in page and '<img src=x' not in page and '<i>c</i>' not in page
    assert '&lt;script&gt;alert(0)' in page
    assert page.count('window.PlotlyConfig') == 1 and page.count('* plotly.js v') == 1   # plotly.js inlined once

def test_real_vs_synthetic(demo):
    real = make_demo_table(80, collapse=False, seed=5).assign(source='real')
    rep = audit(demo, real=real, embed='tfidf', projection='pca', progress=False)
    rc = rep.metrics['real_vs_synthetic']
    assert 0 <= rc['classifier_auc'] <= 1 and 0 <= rc['coverage'] <= 1 and rc['n_real'] == 80
    far = make_table([{'text': f'Der Vertrag Nummer {i} wurde gekündigt, weil die Zahlung fehlt.', 'label': 'x'} for i in range(60)], source='real')
    rep2 = audit(demo, real=far, embed='tfidf', projection='pca', progress=False)
    assert rep2.metrics['real_vs_synthetic']['classifier_auc'] > 0.9
    assert any('classifier tells synthetic from real' in f for f in rep2.findings)

def test_embeddings_must_match_rows(demo):
    with pytest.raises(ValueError, match='embeddings for'): audit(demo, embeddings=np.zeros((3, 8)), progress=False)

def test_dashboard_filters_and_tabs(demo_report):
    d = demo_report.dashboard()
    tab = d.children[3]
    assert tab.titles == TABS
    src = [w for w in d.children[1].children if w.description == 'source'][0]
    src.value = 'seed'
    assert f"{(demo_report.df['source'] == 'seed').sum()} of 150" in d.children[2].value

def test_cli(tmp_path, demo):
    src = tmp_path / 'demo.jsonl'
    demo[['messages', 'category', 'difficulty', 'round', 'source']].to_json(src, orient='records', lines=True)
    out = tmp_path / 'a.html'
    r = subprocess.run(['synthbench', 'audit', str(src), '--json', '--embed', 'tfidf', '--projection', 'pca', '--html', str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m['n'] == 150 and m['findings']
    assert out.stat().st_size > 1_000_000
    assert 'finding' in r.stderr
    bad = subprocess.run(['synthbench', 'audit', str(tmp_path / 'nope.jsonl')], capture_output=True, text=True)
    assert bad.returncode == 2 and 'does not exist' in bad.stderr
    h = subprocess.run(['synthbench', 'audit', '--help'], capture_output=True, text=True)
    assert h.returncode == 0 and '--real' in h.stdout and '--html' in h.stdout

@pytest.mark.slow
def test_umap_and_model_path():
    "~200 rows through the default path: MiniLM embeddings (synthbench.embed) and UMAP."
    df = make_demo_table(200)
    real = make_demo_table(60, collapse=False, seed=3).assign(source='real')
    rep = audit(df, real=real, progress=False)
    assert rep.map.method == 'umap'
    assert rep.notes[0].startswith('Embeddings: sentence embeddings'), rep.notes
    assert any(x.startswith('Round 2') for x in rep.findings), rep.findings
    assert rep.rows[['x', 'y']].notna().all().all()
    assert len(rep.to_html()) > 1_000_000
