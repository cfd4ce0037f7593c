"""tools/check_outputs.py: stored outputs are compared after volatile fields are normalised; a stale one is reported with
the notebook, the cell and a diff; plotly figures are stored compactly; nbdev-clean keeps outputs."""

import json, sys
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tools'))
import check_outputs as co  # noqa: E402


def nb_with(cells) -> dict:
    return {
        'cells': [
            {'cell_type': 'code', 'id': f'c{i}', 'metadata': {}, 'execution_count': None, 'source': src, 'outputs': outs}
            for i, (src, outs) in enumerate(cells)
        ],
        'metadata': {},
        'nbformat': 4,
        'nbformat_minor': 5,
    }


def stream(t):
    return {'output_type': 'stream', 'name': 'stdout', 'text': t}


def result(t):
    return {'output_type': 'execute_result', 'execution_count': None, 'metadata': {}, 'data': {'text/plain': t}}


def test_volatile_fields_are_normalised_and_a_stale_cell_is_named(tmp_path):
    p = tmp_path / 'planted.ipynb'
    p.write_text(
        json.dumps(
            nb_with(
                [
                    (
                        "print('took 0.41s at 2026-12-01T10:00:01, wrote /tmp/abc123/x.jsonl, <object at 0x7f3a2b1c9d00>')",
                        [stream('took 1.93s at 2025-01-02T03:04:05, wrote /tmp/zzz/x.jsonl, <object at 0x7fffaaaabbbb>\n')],
                    ),
                    ("x = 3\nx", [result('4')]),  # stale: the code says 3
                    ("print(0.1 + 0.2)", [stream('0.30000000000000004\n')]),
                    ("#| notest\nraise SystemExit('never run')", [stream('kept as it is\n')]),
                ]
            )
        )
    )
    res = co.execute(p, timeout=60)
    assert res['error'] is None and res['skipped'] == ['c3']
    probs = co.check(p, res)
    assert len(probs) == 1, probs
    assert 'cell 1 (x = 3)' in probs[0] and 'stale' in probs[0]
    assert "-[text/plain] 4" in probs[0] and "+[text/plain] 3" in probs[0]


def test_a_failing_cell_fails_the_check(tmp_path):
    p = tmp_path / 'fails.ipynb'
    p.write_text(json.dumps(nb_with([("assert 1 == 2, 'planted failure'", [])])))
    probs = co.check(p, co.execute(p, timeout=60))
    assert 'executing it failed' in probs[0] and 'AssertionError' in probs[0] and 'planted failure' in '\n'.join(probs)


def test_update_stores_outputs_and_nbdev_clean_keeps_them(tmp_path):
    from nbdev.clean import clean_nb

    p = tmp_path / 'u.ipynb'
    p.write_text(json.dumps(nb_with([("print('hello')", []), ("6 * 7", [])])))
    res = co.execute(p, timeout=60)
    nb = json.loads(p.read_text())
    for c in nb['cells']:
        c['outputs'] = co.compact(res['outputs'][c['id']])
    clean_nb(nb)
    assert nb['cells'][0]['outputs'][0]['text'] == 'hello\n' and nb['cells'][1]['outputs'][0]['data']['text/plain'] in ('42', ['42'])
    p.write_text(json.dumps(nb))
    assert co.check(p, co.execute(p, timeout=60)) == []


def test_plotly_figures_are_stored_compactly():
    fig = {
        'data': [{'type': 'scatter', 'x': [0.123456789, 1.0], 'y': [2.718281828, 3.0]}],
        'layout': {'title': {'text': 'Map'}, 'template': {'data': {'bar': [{}] * 500}}},
    }
    out = {
        'output_type': 'display_data',
        'metadata': {},
        'data': {'application/vnd.plotly.v1+json': fig, 'text/html': '<script>' + 'x' * 3_000_000 + '</script>'},
    }
    (c,) = co.compact([out])
    assert set(c['data']) == {'application/vnd.plotly.v1+json', 'text/plain'}
    assert (
        c['data']['application/vnd.plotly.v1+json']['data'][0]['x'][0] == 0.1235
        and 'template' not in c['data']['application/vnd.plotly.v1+json']['layout']
    )
    assert c['data']['text/plain'] == "plotly figure: 1 trace(s) (scatter), title 'Map'"
    assert len(json.dumps(c)) < 500


def test_committed_notebooks_stay_small():
    total = sum(p.stat().st_size for p in (REPO / 'nbs').rglob('*') if p.is_file())
    assert total < 15 * 2**20, f'nbs/ is {total / 2**20:.1f} MB'
    for n in co.OUTPUT_NOTEBOOKS:
        nb = json.loads((REPO / 'nbs' / f'{n}.ipynb').read_text())
        assert any(c.get('outputs') for c in nb['cells']), f'{n} stores no outputs'


def test_stored_figures_get_a_static_png_and_a_figure_without_one_is_reported(tmp_path):
    "A code host draws no plotly JSON: --update stores a PNG beside each figure; the check names a figure stored without one."
    import base64, os

    if not os.path.exists(co.CHROMIUM):
        pytest.skip(f'NO BROWSER: {co.CHROMIUM} is missing; the static figures were NOT checked')
    fig = {'data': [{'type': 'bar', 'x': ['a', 'b'], 'y': [3, 1]}], 'layout': {'height': 200, 'width': 300, 'title': {'text': 'two bars'}}}
    out = {'output_type': 'display_data', 'metadata': {}, 'data': {'application/vnd.plotly.v1+json': fig, 'text/html': '<div>plotly</div>'}}
    images = co.StaticImages()
    try:
        stored = co.add_images(co.compact([out]), images)
    finally:
        images.close()
    d = stored[0]['data']
    assert list(d) == ['application/vnd.plotly.v1+json', 'image/png', 'text/plain'], list(d)
    png = base64.b64decode(d['image/png'])
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and int.from_bytes(png[16:20], 'big') == 300 and int.from_bytes(png[20:24], 'big') == 200
    assert co.missing_images(stored) == 0 and co.missing_images(co.compact([out])) == 1
    # the PNG is not compared (fonts differ between machines), the figure is
    assert co.comparable(stored) == co.comparable(co.compact([out])) == ["[plotly] plotly figure: 1 trace(s) (bar), title 'two bars'"]
    p = tmp_path / 'fig.ipynb'
    p.write_text(json.dumps(nb_with([("1", co.compact([out]))])))
    probs = co.check(p, {'error': None, 'skipped': [], 'outputs': {}})
    assert len(probs) == 1 and '1 stored figure(s) without a static image' in probs[0], probs
