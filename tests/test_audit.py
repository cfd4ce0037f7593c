"Integration tests of the audit: findings on planted problems, JSON metrics, HTML escaping, CLI, the UMAP + model path."

import json, os, subprocess, sys
import numpy as np, pandas as pd, pytest
from synthbench.analysis.audit import audit, cli_audit, TABS
from synthbench.analysis.metrics import make_demo_table, field_texts, tfidf_embeddings
from synthbench.core import make_table


@pytest.fixture(scope='module')
def demo():
    return make_demo_table(150)


@pytest.fixture(scope='module')
def demo_report(demo):
    return audit(demo, embed='tfidf', projection='pca', progress=False)


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
    for k in ('balance', 'length', 'vocabulary', 'embedding', 'by_round', 'bias'):
        assert k in m
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
    evil = make_table(
        [
            {
                'messages': [
                    {'role': 'user', 'content': f'<script>alert({i})</script> q{i}'},
                    {'role': 'assistant', 'content': '</script><img src=x onerror="window.__pwned=1">'},
                ],
                'category': '<i>c</i>',
                'round': i % 3,
            }
            for i in range(20)
        ]
    )
    rep = audit(evil, embed='tfidf', projection='pca', progress=False)
    page = rep.to_html(tmp_path / 'r.html')
    assert (tmp_path / 'r.html').read_text() == page
    assert '<script>alert' not in page and '<img src=x' not in page and '<i>c</i>' not in page
    assert '&lt;script&gt;alert(0)' in page
    assert page.count('window.PlotlyConfig') == 1 and page.count('* plotly.js v') == 1  # plotly.js inlined once


def test_real_vs_synthetic(demo):
    real = make_demo_table(80, collapse=False, seed=5).assign(source='real')
    rep = audit(demo, real=real, embed='tfidf', projection='pca', progress=False)
    rc = rep.metrics['real_vs_synthetic']
    assert 0 <= rc['classifier_auc'] <= 1 and 0 <= rc['coverage'] <= 1 and rc['n_real'] == 80
    far = make_table(
        [{'text': f'Der Vertrag Nummer {i} wurde gekündigt, weil die Zahlung fehlt.', 'label': 'x'} for i in range(60)], source='real'
    )
    rep2 = audit(demo, real=far, embed='tfidf', projection='pca', progress=False)
    assert rep2.metrics['real_vs_synthetic']['classifier_auc'] > 0.9
    assert any('classifier tells synthetic from real' in f for f in rep2.findings)


def test_embeddings_must_match_rows(demo):
    with pytest.raises(ValueError, match='embeddings for'):
        audit(demo, embeddings=np.zeros((3, 8)), progress=False)


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
    r = subprocess.run(
        ['synthbench', 'audit', str(src), '--json', '--embed', 'tfidf', '--projection', 'pca', '--html', str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m['n'] == 150 and m['findings']
    assert out.stat().st_size > 1_000_000
    assert 'finding' in r.stderr
    bad = subprocess.run(['synthbench', 'audit', str(tmp_path / 'nope.jsonl')], capture_output=True, text=True)
    assert bad.returncode == 2 and 'does not exist' in bad.stderr
    lines = src.read_text().splitlines()
    broken = tmp_path / 'broken.jsonl'  # a format error: file, line and fix from synthbench.formats
    broken.write_text('\n'.join([*lines[:2], '{"messages": [', *lines[2:]]) + '\n')
    bad = subprocess.run(['synthbench', 'audit', str(src), '--real', str(broken)], capture_output=True, text=True)
    assert bad.returncode == 2 and 'broken.jsonl, line 3: not valid JSON' in bad.stderr and 'Fix:' in bad.stderr, bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    h = subprocess.run(['synthbench', 'audit', '--help'], capture_output=True, text=True)
    assert h.returncode == 0 and '--real' in h.stdout and '--html' in h.stdout and '--embed-model' in h.stdout
    # a misspelt embedding model is an error (exit 2, one line), never a silent fall back to TF-IDF vectors
    for args, says in [
        (['--embed-model', 'all-MiniLM-L6-v2@bf17'], "audit: Embedding model 'all-MiniLM-L6-v2@bf17': unknown precision 'bf17'"),
        (['--embed-model', 'all-MiniLM-L6-v2@bf16', '--embed', 'tfidf'], "embed='tfidf' uses none"),
    ]:
        bad = subprocess.run(['synthbench', 'audit', str(src), *args], capture_output=True, text=True, timeout=300)
        assert bad.returncode == 2 and says in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, (args, bad.stderr)


@pytest.mark.slow
def test_umap_and_model_path():
    "~200 rows through the default path: MiniLM embeddings (synthbench.llm.embed) and UMAP."
    df = make_demo_table(200)
    real = make_demo_table(60, collapse=False, seed=3).assign(source='real')
    rep = audit(df, real=real, progress=False)
    assert rep.map.method == 'umap'
    assert rep.notes[0].startswith('Embeddings: sentence embeddings'), rep.notes
    assert any(x.startswith('Round 2') for x in rep.findings), rep.findings
    assert rep.rows[['x', 'y']].notna().all().all()
    assert len(rep.to_html()) > 1_000_000
    b = audit(df, real=real, progress=False, embed_model='all-MiniLM-L6-v2@bfloat16', projection='pca')
    assert b.notes[0] == 'Embeddings: sentence embeddings (all-MiniLM-L6-v2@bfloat16).', b.notes
    m = audit(df, real=real, progress=False, projection='pca').metrics['embedding']
    for k in ('mean_cosine_distance', 'near_duplicate_rate', 'top_cluster_share'):  # bfloat16 vectors tell float32's story
        assert abs(b.metrics['embedding'][k] - m[k]) < 0.01, (k, b.metrics['embedding'][k], m[k])


# ---- "See collapse, imbalance and bias at a glance": 430 real chatterbot pairs + 170 collapsed rows from 3 templates
from synthbench.analysis.metrics import make_collapsed_table
from synthbench.analysis.audit import table_html, fig_length, fig_balance, dashboard


@pytest.fixture(scope='module')
def collapsed():
    return audit(make_collapsed_table(430, 170), embed='tfidf', projection='pca', progress=False)


@pytest.fixture(scope='module')
def diverse():
    return audit(make_collapsed_table(430, 0), embed='tfidf', projection='pca', progress=False)


def test_copies_counted_grouped_and_first(collapsed):
    m = collapsed.metrics
    assert (m['copies']['rows'], m['copies']['groups']) == (170, 3)
    assert collapsed.findings[0].startswith('170 of 600 rows (28%) are exact copies (in 3 groups'), collapsed.findings[:2]
    assert m['findings_ranked'][0]['severity'] == 'high'
    sev = [r['severity'] for r in m['findings_ranked']]
    order = {'high': 0, 'medium': 1, 'low': 2}
    assert sev == sorted(sev, key=order.get)  # ranked by severity
    assert 'exact copies' in collapsed.summary_html() and '170 in 3 groups' in collapsed.summary_html()


def test_map_draws_copies_as_one_sized_point_over_density(collapsed):
    fig = collapsed.map.figure('round')
    assert fig.data[0].type == 'contour'
    pts = [t for t in fig.data if t.type == 'scatter']
    r2 = [t for t in pts if t.name == 'round 2'][0]
    assert len(r2.x) == 3  # 170 rows, 3 distinct texts: 3 markers
    assert max(r2.marker.size) > 30 and any('×105 copies' in h for h in r2.hovertext)
    assert max(np.atleast_1d(pts[0].marker.size)) == 6
    sp = collapsed.tables['spread']
    assert sp.loc['2', 'map_area_share'] < 0.1 < sp.loc['0', 'map_area_share'] and sp.loc['2', 'dense_share'] > 0.9
    assert any(f.startswith('Round 2: its 170 rows (3 distinct) cover') for f in collapsed.findings)


def test_diverse_set_shows_no_copies_or_collapse(diverse):
    assert diverse.metrics['copies']['rows'] == 0
    assert not any('exact copies' in f or 'collapse' in f or 'near-duplicate' in f or 'cover' in f for f in diverse.findings), (
        diverse.findings
    )
    pts = [t for t in diverse.map.figure('round').data if t.type == 'scatter']
    assert all(max(np.atleast_1d(t.marker.size)) == 6 for t in pts)


def test_palette_has_distinct_colours_for_17_clusters():
    df = make_collapsed_table(300, 0)
    rep = audit(df, embed='tfidf', projection='pca', k=17, progress=False)
    cols = [t.marker.color for t in rep.map.figure('cluster').data if t.type == 'scatter']
    assert len(cols) == 17 and len(set(cols)) == 17
    names = [t.name for t in rep.map.figure('cluster').data if t.type == 'scatter']
    assert all(n.startswith('cluster ') and ': ' in n for n in names), names  # labelled by top terms (c-TF-IDF)


def test_balance_without_spec_finds_imbalance_and_title_has_no_targets():
    recs = [{'text': f'example number {i} about thing {i % 7}', 'label': 'a' if i < 216 else 'b' if i < 597 else 'c'} for i in range(600)]
    rep = audit(make_table(recs), embed='tfidf', projection='pca', progress=False)
    assert any("label is imbalanced: 'b' has 63.5%" in f and "'c' 0.5%" in f for f in rep.findings), rep.findings
    assert 'target' not in fig_balance(rep.tables['balance']).layout.title.text


def test_word_sense_guard_and_contexts():
    recs = [
        {
            'messages': [
                {'role': 'user', 'content': f'My laptop screen is black again ({i})'},
                {'role': 'assistant', 'content': 'Restart it.'},
            ],
            'category': 'tech',
        }
        for i in range(40)
    ]
    recs += [
        {
            'messages': [{'role': 'user', 'content': f'Where is my parcel {i}?'}, {'role': 'assistant', 'content': 'On its way.'}],
            'category': 'shipping',
        }
        for i in range(40)
    ]
    rep = audit(make_table(recs), embed='tfidf', projection='pca', progress=False)
    assert not any('ethnicity' in f for f in rep.findings), rep.findings
    recs2 = [dict(r) for r in recs]
    for r in recs2[:40]:
        r['messages'] = [{'role': 'user', 'content': r['messages'][0]['content'] + ' said the black woman'}, r['messages'][1]]
    rep2 = audit(make_table(recs2), embed='tfidf', projection='pca', progress=False)
    f = [x for x in rep2.findings if 'ethnicity' in x]
    assert f and 'Triggered by: "' in f[0] and 'black woman' in f[0], rep2.findings


def test_small_expected_counts_are_not_chi_square(collapsed):
    t = collapsed.tables['association']
    assert {'test', 'q_value'} <= set(t.columns)
    assert (t.loc[t['test'] == 'chi2', 'min_expected'] >= 5).all()
    assert t.loc[t['test'] == 'skipped', 'p_value'].isna().all()


def test_sentiment_of_tiny_categories_not_reported():
    recs = [
        {
            'messages': [
                {'role': 'user', 'content': f'q {i}'},
                {'role': 'assistant', 'content': 'Fine, thanks.' if i >= 6 else 'This is terrible, awful, I hate it.'},
            ],
            'category': 'tiny' if i < 6 else 'big',
        }
        for i in range(80)
    ]
    rep = audit(make_table(recs), embed='tfidf', projection='pca', progress=False)
    assert not any("Sentiment of category 'tiny'" in f for f in rep.findings), rep.findings


def test_per_round_table_shows_the_round_column(demo_report):
    h = table_html(demo_report.tables['by_round'])
    assert '<th>round</th>' in h and '<th>MATTR</th>' in h and '<th>mattr</th>' not in h


def test_length_histogram_not_split_by_a_one_value_column(demo_report):
    r = demo_report.rows.assign(source='generated')
    fig = fig_length(r)
    assert len(fig.data) == 3 and [t.name for t in fig.data] == ['round 0', 'round 1', 'round 2']
    one = fig_length(r.assign(round=1, category='x'))
    assert len(one.data) == 1 and 'by' not in one.layout.title.text


def test_every_metric_explained(collapsed):
    page = collapsed.to_html()
    for raw in ('<th>mattr</th>', '<th>distinct_2</th>', '<th>compression_ratio</th>', '<th>vendi_score</th>'):
        assert raw not in page, raw
    assert 'What the numbers mean' in page and 'higher is worse (more repetitive)' in page
    assert 'title="MATTR: moving-average type-token ratio' in collapsed.summary_html()


def test_outliers_are_a_compact_scrollable_table(collapsed):
    from synthbench.analysis.audit import outliers_html

    h = outliers_html(collapsed)
    assert 'max-height:260px;overflow:auto' in h and h.count('<tr>') == (collapsed.rows['length_outlier'] != '').sum() + 1
    assert 'synthbench-examples' not in h


def test_dashboard_redraws_visible_tab_only_and_colour_keeps_tab(collapsed):
    import synthbench.analysis.audit as A

    calls = []
    orig = A._tab_widgets
    A._tab_widgets = lambda rep, m, tab, color, show, **kw: (
        calls.append(tab + (' (map figure)' if kw.get('map_only') else '')),
        orig(rep, m, tab, color, show, **kw),
    )[1]
    try:
        d = dashboard(collapsed)
        tab = d.children[3]
        assert calls == ['Balance']
        tab.selected_index = 3
        assert calls[-1] == 'Embedding map'
        colour = d.children[1].children[-1]
        colour.value = 'category'
        assert tab.selected_index == 3 and calls[-1] == 'Embedding map (map figure)' and len(calls) == 3  # only the map figure is swapped
        assert [t.name for t in tab.children[3].children[0].data if t.type == 'scatter'][0] != 'cluster 0'
        rd = [w for w in d.children[1].children if w.description == 'round'][0]
        rd.value = '2'
        assert calls[-1] == 'Embedding map (map figure)' and len(calls) == 4  # only the visible tab (on the map tab: its figure)
        tab.selected_index = 0
        assert calls[-1] == 'Balance'  # a stale tab redraws when shown
        mw = tab.children[3].children[0]
        assert sum(len(t.x) for t in mw.data if t.type == 'scatter') == 3  # round 2: three distinct texts
    finally:
        A._tab_widgets = orig


def test_map_selection_lists_groups_with_counts(collapsed):
    from plotly.callbacks import Points

    d = dashboard(collapsed)
    tab = d.children[3]
    tab.selected_index = 3
    d.children[1].children[-1].value = 'round'
    mw = tab.children[3].children[0]
    tr = [t for t in mw.data if t.name == 'round 2'][0]
    tr._dispatch_on_selection(Points(list(range(len(tr.x))), [0]), None)
    picked = d.children[4].value
    assert 'in 3 distinct text(s)' in picked and '×105' in picked and picked.count('How do I fix my computer?') <= 3, picked[:500]
    assert len(collapsed.selection) == 170


def test_report_provenance_search_data_escaped(tmp_path):
    recs = [
        {
            'messages': [
                {'role': 'user', 'content': f'</script><script>window.__pwned=1</script> q{i}'},
                {'role': 'assistant', 'content': 'ok & <b>bold</b>'},
            ],
            'round': i % 2,
        }
        for i in range(20)
    ]
    rep = audit(make_table(recs), embed='tfidf', projection='pca', progress=False, source='evil.jsonl')
    page = rep.to_html(tmp_path / 'r.html')
    assert 'Provenance' in page and 'evil.jsonl' in page and 'synthbench' in page and 'id="sb-search"' in page
    data = page[page.index('id="sb-rows">') :]
    data = data[: data.index('</script>')]
    assert '<' not in data[len('id="sb-rows">') :] and '\\u003c/script\\u003e' in data
    assert 'innerHTML' not in page.split('id="sb-rows"')[1]


def test_real_vs_synthetic_numbers_are_named_and_explained(demo):
    from synthbench.analysis.audit import report_sections

    real = make_demo_table(80, collapse=False, seed=5).assign(source='real')
    rep = audit(demo, real=real, embed='tfidf', projection='pca', progress=False)
    h = dict(report_sections(rep))['Real vs synthetic'][1]
    assert '<td>classifier AUC</td>' in h and '<td>MMD²</td>' in h and '<td>MATTR (real)</td>' in h and '0.5 = indistinguishable' in h
    assert '<td>classifier_auc</td>' not in h and '<td>mmd2</td>' not in h


def test_local_map_sample_and_step_timings(demo):
    "Local engine above `map_sample`: the map holds a sample, every row still has a cluster, rows off the map have no coordinates; every step is timed."
    rep = audit(demo, embed='tfidf', projection='pca', progress=False, map_sample=60)
    assert type(rep.map).__name__ == 'SampledMap' and len(rep.map.points) == 60
    assert rep.rows['cluster'].notna().all() and int(rep.rows['x'].notna().sum()) == 60
    assert rep.metrics['provenance']['map'] == 'a sample of 60 of 150 rows'
    assert any(n.startswith('Map of a sample of 60 of 150 rows') for n in rep.notes), rep.notes
    assert list(rep.metrics['timings_s']) == ['balance', 'length', 'vocabulary', 'embeddings', 'diversity', 'map', 'bias', 'real']
    full = audit(demo, embed='tfidf', projection='pca', progress=False)
    assert 'map' not in full.metrics['provenance'] and full.rows['x'].notna().all()
