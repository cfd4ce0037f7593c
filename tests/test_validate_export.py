"Rule validation, the validate/export CLIs, export formats, the OpenAI format check, splits, mixing and the dataset card."

import json, subprocess
from pathlib import Path

import pandas as pd
import pytest

from synthbench.cli import main
from synthbench.core import make_table
from synthbench.formats import load_examples, load_table, save_table
from synthbench.spec import load_spec, spec_from_dict
from synthbench.stages.validate import validate, validation_summary, check_example, reason_codes, REASONS
from synthbench.stages.export import export_dataset, check_openai_jsonl, train_eval_split, mix_real_synthetic, dataset_card

SEEDS = Path(__file__).parent.parent / 'seeds'
u = lambda c: {'role': 'user', 'content': c}
a = lambda c: {'role': 'assistant', 'content': c}
GOOD = "Created task: 'Water plants' | Priority: low | Due: none"


@pytest.fixture(scope='module')
def spec():
    return load_spec(SEEDS / 'task_api')


@pytest.mark.parametrize(
    'msgs,row,code',
    [
        ([u('hi'), a('   ')], {}, 'empty_turn'),
        ([u('hi'), u('again'), a(GOOD)], {}, 'role_order'),
        ([a(GOOD)], {}, 'first_not_user'),
        ([u('add water plants')], {}, 'last_not_assistant'),
        ([u('hi'), {'role': 'system', 'content': 's'}, a(GOOD)], {}, 'system_not_first'),
        ([u('hi'), {'role': 'bot', 'content': GOOD}], {}, 'bad_role'),
        ([u('hi'), {'role': 'assistant', 'content': ['parts']}], {}, 'bad_message'),
        ([], {}, 'no_messages'),
        ([u('add water plants'), a('Done! I added it for you.')], {}, 'format_mismatch'),
        ([u('add water plants'), a('Error: x')], {}, 'too_short'),
        ([u('add'), a('Error: ' + 'x' * 1300)], {}, 'too_long'),
        ([u('add water plants'), a(GOOD)], {'category': 'create', 'difficulty': 'impossible'}, 'unknown_axis_value'),
    ],
)
def test_each_rule_names_its_reason(spec, msgs, row, code):
    r = validate(make_table([{'messages': msgs, **row}]), spec)
    assert r.loc[0, 'valid'] is False and code in reason_codes(r.loc[0, 'invalid_reason']), r.loc[0, 'invalid_reason']
    assert code in REASONS


def test_valid_row_and_spec_path(spec):
    r = validate(make_table([{'messages': [u('add water plants'), a(GOOD)], 'category': 'create'}]), str(SEEDS / 'task_api'))
    assert r.loc[0, 'valid'] is True and r.loc[0, 'invalid_reason'] == ''


def test_validate_keeps_rows_and_does_not_modify_input(spec):
    df = make_table([{'messages': [u('x'), a('')]}, {'messages': [u('add'), a(GOOD)]}])
    before = df.copy()
    out = validate(df, spec)
    assert len(out) == 2 and out['valid'].tolist() == [False, True]
    pd.testing.assert_frame_equal(df, before)


def test_classification_rules():
    cls = spec_from_dict({'task_type': 'classification', 'labels': ['billing', 'shipping'], 'axes': {'persona': ['polite', 'terse']}})
    df = make_table(
        [
            {'text': 'Refund!', 'label': 'billing', 'persona': 'polite'},
            {'text': 'Refund!', 'label': 'Billing'},
            {'text': ' ', 'label': 'billing'},
            {'text': 'x', 'label': 'billing', 'persona': 'rude'},
            {'text': None, 'label': None},
        ]
    )
    codes = [reason_codes(r) for r in validate(df, cls)['invalid_reason']]
    assert codes == [[], ['unknown_label'], ['empty_text'], ['unknown_axis_value'], ['no_content']]


def test_json_schema_rules():
    js = spec_from_dict(
        {
            'output': {
                'format': 'json',
                'schema': {'type': 'object', 'properties': {'priority': {'enum': ['low', 'high']}}, 'required': ['priority']},
            }
        }
    )
    assert check_example({'messages': [u('x'), a('{"priority": "low"}')]}, js) == []
    assert reason_codes('; '.join(check_example({'messages': [u('x'), a('{"priority": "mid"}')]}, js))) == ['schema_mismatch']
    assert reason_codes('; '.join(check_example({'messages': [u('x'), a('{"priority": ')]}, js))) == ['bad_json']
    assert reason_codes('; '.join(check_example({'messages': [u('x'), a('{}')]}, js))) == ['schema_mismatch']


def test_summary_counts_and_displays(spec):
    df = make_table(
        [{'messages': [u('x'), a('')]}, {'messages': [u('y'), a('')]}, {'messages': [u('z')]}, {'messages': [u('add'), a(GOOD)]}]
    )
    s = validation_summary(validate(df, spec))
    assert (s.total, s.valid, s.invalid) == (4, 1, 3)
    assert s.reasons == {'empty_turn': 2, 'last_not_assistant': 1}
    assert str(s) == "Valid: 1/4, Invalid reasons: {'empty_turn': 2, 'last_not_assistant': 1}"
    md = s._repr_markdown_()
    assert '**Valid: 1/4**' in md and '| `empty_turn` | 2 |' in md
    with pytest.raises(ValueError, match='run synthbench.stages.validate.validate'):
        validation_summary(make_table([{'text': 'a'}]).drop(columns='valid'))


def test_cli_validate(tmp_path, capsys):
    bad = tmp_path / 'gen.jsonl'
    rows = [json.loads(l) for l in (SEEDS / 'task_api/seeds.jsonl').read_text(encoding='utf-8').splitlines()[:3]]
    rows.append({'conversations': [{'from': 'human', 'value': 'add task x'}, {'from': 'gpt', 'value': ''}], 'category': 'create'})
    bad.write_text(''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in rows), encoding='utf-8')
    out = tmp_path / 'v.parquet'
    assert main(['validate', str(bad), '--spec', str(SEEDS / 'task_api'), '-o', str(out)]) == 0
    assert 'Valid: 3/4' in capsys.readouterr().out
    t = load_table(out)
    assert t['valid'].tolist() == [True, True, True, False] and t.loc[3, 'invalid_reason'].startswith(
        'empty_turn: message 1 (assistant) is empty'
    )
    assert main(['validate', str(bad), '--spec', str(SEEDS / 'task_api'), '--fail-on-invalid', '--json']) == 1
    assert json.loads(capsys.readouterr().out)['reasons'] == {'empty_turn': 1}
    # bad input: clear message on stderr, non-zero exit
    assert main(['validate', str(tmp_path / 'nope.jsonl')]) == 2
    assert 'file not found' in capsys.readouterr().err
    (tmp_path / 'task.yaml').write_text('name: x\naxes:\n  difficulty: {easy: 2}\n', encoding='utf-8')
    assert main(['validate', str(bad), '--spec', str(tmp_path)]) == 2
    assert "line 3, field 'axes.difficulty': shares sum to 2, not 1" in capsys.readouterr().err


# ---------- export ----------


@pytest.fixture
def validated(spec):
    return validate(spec.seeds(), spec)


@pytest.mark.parametrize('fmt', ['sharegpt', 'alpaca', 'openai', 'chatml', 'parquet'])
def test_export_round_trip(tmp_path, validated, fmt):
    path = tmp_path / ('out.parquet' if fmt == 'parquet' else 'out.jsonl')
    rep = export_dataset(validated, path, fmt)
    assert rep.written == len(validated) and rep.excluded == {} and rep.issues == []
    back = load_examples(path)
    assert back['messages'].tolist() == validated['messages'].tolist()
    if fmt == 'parquet':
        assert back['valid'].tolist() == [True] * len(validated)


def test_export_only_valid_counts_what_it_leaves_out(tmp_path, validated):
    extra = make_table([{'messages': [u('add x'), a('')]}, {'messages': [u('add y'), a(GOOD)]}], source='generated')
    df = pd.concat([validated, validate(extra.iloc[:1]), extra.iloc[1:]], ignore_index=True)  # last row never validated
    rep = export_dataset(df, tmp_path / 'o.jsonl', 'openai', only_valid=True)
    assert rep.written == len(validated) and rep.excluded == {'invalid': 1, 'not_validated': 1}
    assert len((tmp_path / 'o.jsonl').read_text(encoding='utf-8').splitlines()) == len(validated)
    assert "excluded: {'invalid': 1, 'not_validated': 1}" in str(rep)


def test_openai_export_is_clean_by_the_checker(tmp_path, validated):
    p = tmp_path / 'ft.jsonl'
    export_dataset(validated, p, 'openai')
    for line in p.read_text(encoding='utf-8').splitlines():
        assert set(json.loads(line)) == {'messages'}
    assert check_openai_jsonl(p) == []


def test_openai_checker_flags_a_bad_file(tmp_path):
    p = tmp_path / 'bad.jsonl'
    p.write_text(
        '{"messages": [{"role": "user", "content": "q"}]}\nnot json\n{"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "a", "foo": 1}]}\n\n',
        encoding='utf-8',
    )
    got = [(i.line, i.code) for i in check_openai_jsonl(p)]
    assert got == [
        (1, 'example_missing_assistant_message'),
        (2, 'json_error'),
        (3, 'missing_content'),
        (3, 'message_unrecognized_key'),
        (4, 'empty_line'),
    ]
    e = tmp_path / 'e.jsonl'
    e.write_text('', encoding='utf-8')
    assert [i.code for i in check_openai_jsonl(e)] == ['empty_file']


def test_chatml_export_text(tmp_path):
    df = make_table([{'messages': [{'role': 'system', 'content': 'S'}, u('Q 🎉'), a('A\nB')]}])
    export_dataset(df, tmp_path / 'c.jsonl', 'chatml')
    rec = json.loads((tmp_path / 'c.jsonl').read_text(encoding='utf-8'))
    assert rec == {'text': '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ 🎉<|im_end|>\n<|im_start|>assistant\nA\nB<|im_end|>'}


def test_export_text_rows_to_chat_format_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r'row id=\w+: cannot be written as messages'):
        export_dataset(make_table([{'text': 'a', 'label': 'b'}]), tmp_path / 'o.jsonl', 'openai')


def test_cli_export(tmp_path, capsys):
    out = tmp_path / 'x.jsonl'
    assert main(['export', str(SEEDS / 'support_tickets/seeds.jsonl'), '-o', str(out), '--format', 'sharegpt']) == 2
    assert 'cannot be written as sharegpt' in capsys.readouterr().err
    v = tmp_path / 'v.parquet'
    assert main(['validate', str(SEEDS / 'policy_qa/seeds.json'), '--spec', str(SEEDS / 'policy_qa'), '-o', str(v)]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                'export',
                str(v),
                '-o',
                str(out),
                '--format',
                'openai',
                '--only-valid',
                '--eval-frac',
                '0.2',
                '--split',
                'train',
                '--card',
                str(tmp_path / 'card.md'),
                '--spec',
                str(SEEDS / 'policy_qa'),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "Exported 15/20 rows as openai" in printed  # 5 eval rows: one per category with >= 2 rows and "split is not 'train'" in printed
    assert '| category | rows | share | target |' in (tmp_path / 'card.md').read_text(encoding='utf-8')


def test_console_script_export(tmp_path):
    r = subprocess.run(['synthbench', 'export', '--help'], capture_output=True, text=True)
    assert r.returncode == 0 and '--only-valid' in r.stdout and 'sharegpt' in r.stdout
    r = subprocess.run(
        ['synthbench', 'export', str(SEEDS / 'task_api/seeds.jsonl'), '-o', str(tmp_path / 'a.jsonl'), '--format', 'alpaca'],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert len((tmp_path / 'a.jsonl').read_text(encoding='utf-8').splitlines()) == 20


# ---------- split, mix, card ----------


def test_split_is_stratified_and_deterministic():
    df = make_table([{'text': f'{lab} {i}', 'label': lab} for lab, n in (('a', 50), ('b', 30), ('c', 10), ('d', 1)) for i in range(n)])
    s = train_eval_split(df, eval_frac=0.2, seed=1)
    ev = s[s['split'] == 'eval']['label'].value_counts().to_dict()
    assert ev == {'a': 10, 'b': 6, 'c': 2}  # 'd' has one row: stays in train
    again = train_eval_split(df.sample(frac=1, random_state=0), eval_frac=0.2, seed=1).set_index('id')['split']
    assert (again.loc[s['id']].values == s['split'].values).all()
    other = train_eval_split(df, eval_frac=0.2, seed=2)
    assert (other['split'] != s['split']).any()
    with pytest.raises(ValueError, match='no column'):
        train_eval_split(df, by='nope')


def test_mix_ratio_and_report():
    syn = make_table([{'text': f's{i}', 'label': 'x'} for i in range(100)], source='generated')
    real = make_table([{'text': f'r{i}', 'label': 'x'} for i in range(100)], source='seed')
    m = mix_real_synthetic(syn, real, 0.8)
    rep = m.attrs['mix']
    assert (rep.synthetic_used, rep.real_used) == (100, 25) and len(m) == 125
    assert m['source'].value_counts().to_dict() == {'generated': 100, 'real': 25}
    m = mix_real_synthetic(syn, real, 0.7, n=50, seed=3)
    assert (m.attrs['mix'].synthetic_used, m.attrs['mix'].real_used) == (35, 15)
    assert 'requested 70%' in str(m.attrs['mix']) and 'unused: 65 synthetic, 85 real' in str(m.attrs['mix'])
    assert mix_real_synthetic(syn, real, 0.7, n=50, seed=3)['id'].tolist() == m['id'].tolist()


def test_card_counts_provenance_cost_and_escapes():
    df = make_table(
        [
            {
                'text': '<script>x</script>',
                'label': '<b>evil</b>',
                'model': 'gpt-4o-mini',
                'prompt_id': 'p1',
                'op': 'generate',
                'tokens_in': 100,
                'tokens_out': 50,
                'cost_usd': 0.25,
                'source': 'generated',
                'difficulty': 'hard',
            },
            {'text': 'ok', 'label': 'billing', 'source': 'seed', 'difficulty': 'easy'},
        ]
    )
    df = validate(df)
    card = dataset_card(df, 'tickets')
    md = card._repr_markdown_()
    assert md.startswith('# tickets') and '<b>' not in md and '&lt;b&gt;evil&lt;/b&gt;' in md
    for s in (
        '| source | rows | share |',
        '| difficulty |',
        'Valid: 2/2',
        '`gpt-4o-mini` (1)',
        '`p1` (1)',
        '`generate` (1)',
        'Tokens in: 100; tokens out: 50; cost: $0.2500',
    ):
        assert s in md, s


def test_split_keeps_lineage_together_and_survives_cycles():
    from synthbench.stages.export import lineage_roots

    rows = [{'text': f'seed {i}', 'label': 'a', 'id': f's{i}'} for i in range(20)]
    rows += [{'text': f'para {i}', 'label': 'a', 'id': f'p{i}', 'parent_id': f's{i}'} for i in range(20)]
    rows += [
        {'text': 'orphan', 'label': 'a', 'id': 'o', 'parent_id': 'not-in-table'},
        {'text': 'loop x', 'label': 'b', 'id': 'x', 'parent_id': 'y'},
        {'text': 'loop y', 'label': 'b', 'id': 'y', 'parent_id': 'x'},
    ]
    df = make_table(rows)
    roots = lineage_roots(df)
    assert roots.iloc[20] == 's0' and roots.iloc[40] == 'o' and set(roots.iloc[41:]) <= {'x', 'y'}
    s = train_eval_split(df, eval_frac=0.25).set_index('id')['split']
    assert all(s[f's{i}'] == s[f'p{i}'] for i in range(20))
    loose = train_eval_split(df, eval_frac=0.25, keep_lineage=False, seed=5).set_index('id')['split']
    assert any(loose[f's{i}'] != loose[f'p{i}'] for i in range(20))  # a plain split would leak paraphrases


# ---------- the stages; export ships only what the pipeline kept ----------

from synthbench.run.stage import RunContext, StageError, check_params
from synthbench.stages.validate import validate_stage
from synthbench.stages.export import export_stage, export_rows, incomplete_reason


def _marked(spec, n_rejected=10, n_dup=19):
    "The 20 validated task seeds, the first `n_rejected` judge-rejected and the last `n_dup` marked duplicates."
    v = validate(spec.seeds(), spec)
    return v.assign(
        judge_pass=[k >= n_rejected for k in range(20)], judge_overall=3.0, dup_of=[''] * (20 - n_dup) + [v['id'].iloc[0]] * n_dup
    )


def test_cli_export_leaves_out_marked_rows_by_default(tmp_path, spec, capsys):
    inp = tmp_path / 'm.parquet'
    save_table(_marked(spec), inp)
    out = tmp_path / 'o.jsonl'
    assert main(['export', str(inp), '-o', str(out), '--only-valid']) == 1  # was "Exported 20/20 rows"
    err = capsys.readouterr().err
    assert 'nothing to export: all 20 rows were left out: duplicate (19), rejected (1)' in err and not out.exists()
    assert main(['export', str(inp), '-o', str(out), '--keep', 'duplicate']) == 0
    printed = capsys.readouterr().out
    assert 'Exported 10/20 rows as openai' in printed and "left out 10: {'rejected': 10}" in printed
    assert len(out.read_text(encoding='utf-8').splitlines()) == 10
    assert main(['export', str(inp), '-o', str(out), '--keep-all']) == 0 and 'Exported 20/20' in capsys.readouterr().out
    assert main(['export', str(inp), '-o', str(out), '--keep', 'duplicates']) == 2
    assert "did you mean 'duplicate'" in capsys.readouterr().err
    assert main(['export', str(inp), '-o', str(out), '--keep', 'all']) == 2 and '--keep-all' in capsys.readouterr().err


def test_export_leaves_out_unjudged_and_invalid(tmp_path, spec):
    v = validate(spec.seeds(), spec).assign(judge_error=[''] * 18 + ['HTTP 500: boom', None], judge_pass=[True] * 18 + [None, None])
    v.loc[0, 'valid'] = False
    v.loc[0, 'invalid_reason'] = 'format_mismatch: x'
    rep = export_dataset(v, tmp_path / 'o.jsonl')
    assert rep.written == 18 and rep.excluded == {'invalid': 1, 'unjudged': 1}
    assert rep.left_out['drop_reason'].tolist() == ['invalid: format_mismatch: x', 'not judged: HTTP 500: boom']
    assert export_dataset(v, tmp_path / 'o.jsonl', drop=()).written == 20


INCOMPLETE = [
    ([u('add x'), {'role': 'assistant', 'content': None}], 'message 1 (assistant) has no content'),
    ([u('add x')], 'no assistant reply'),
    ([a(GOOD)], 'no user turn'),
    ([u('  '), a(GOOD)], 'message 0 (user) has no content'),
    ([], 'no messages'),
]


@pytest.mark.parametrize('fmt', ['sharegpt', 'alpaca', 'openai', 'chatml', 'parquet'])
def test_rows_lacking_a_required_turn_are_never_written(tmp_path, validated, fmt):
    bad = make_table([{'messages': m} for m, _ in INCOMPLETE], source='generated')
    df = pd.concat([validated.iloc[:3], bad], ignore_index=True)
    path = tmp_path / ('o.parquet' if fmt == 'parquet' else 'o.jsonl')
    rep = export_dataset(df, path, fmt)
    assert rep.written == 3 and rep.excluded == {'incomplete': len(INCOMPLETE)}
    assert [r.split(': ', 1)[1] for r in rep.left_out['drop_reason']] == [w for _, w in INCOMPLETE]
    if fmt != 'parquet':
        assert 'null' not in path.read_text(encoding='utf-8')
    assert len(load_examples(path)) == 3


def test_text_rows_without_text_or_label_are_never_written(tmp_path):
    df = make_table([{'text': 'refund please', 'label': 'billing'}, {'text': 'where is it', 'label': None}, {'text': ' ', 'label': 'x'}])
    rep = export_dataset(df, tmp_path / 't.jsonl', 'text')
    assert rep.written == 1 and rep.left_out['drop_reason'].tolist() == ['incomplete: no label', 'incomplete: no text']
    assert incomplete_reason({'text': 'a', 'label': 'b'}) == ''


def test_export_stage_contract(tmp_path, spec):
    df = _marked(spec, n_rejected=4, n_dup=6)
    r = export_stage(df, ctx=RunContext(run_dir=tmp_path / 'run'))
    assert r.ok and len(r.table) == 10 and r.n_dropped == 10 and set(r.dropped['drop_rule']) == {'rejected', 'duplicate'}
    assert r.files == {'jsonl': str(tmp_path / 'run' / 'dataset.jsonl'), 'parquet': str(tmp_path / 'run' / 'dataset.parquet')}
    assert r.report['left_out_by'] == {'duplicate': 6, 'rejected': 4} and r.report['format'] == 'openai' and r.report['issues'] == []
    assert len(load_table(r.files['parquet'])) == 10 and not r.table.attrs
    assert export_stage(df, ctx=RunContext(run_dir=tmp_path / 'run'), keep=['rejected', 'duplicate'], name='all').report['written'] == 20
    text = make_table([{'text': 't1', 'label': 'a'}, {'text': 't2', 'label': 'b'}])
    assert export_stage(text, ctx=RunContext(run_dir=tmp_path / 't')).report['format'] == 'text'
    failed = export_stage(df.assign(judge_pass=False), ctx=RunContext(run_dir=tmp_path / 'f'))
    assert (failed.status, failed.error_kind, len(failed.table), failed.n_dropped) == ('failed', 'target', 0, 20)
    assert 'rejected (14), duplicate (6)' in failed.reason and failed.files == {}
    assert check_params(export_stage, {'only_unmarked': True})[0][0] == 'only_unmarked'
    with pytest.raises(StageError, match="did you mean 'alpaca'"):
        export_stage(df, ctx=RunContext(run_dir=tmp_path), format='alpacca')


def test_validate_stage_contract(spec):
    df = make_table([{'messages': [u('add x'), a(GOOD)]}, {'messages': [u('add y'), a('')]}])
    r = validate_stage(df, ctx=RunContext(spec=spec))
    assert r.ok and r.n_dropped == 0 and r.table['valid'].tolist() == [True, False]
    assert (r.report['total'], r.report['valid'], r.report['invalid'], r.report['reasons']) == (2, 1, 1, {'empty_turn': 1})
    assert r.report['examples']['empty_turn'].startswith('empty_turn: message 1') and not r.table.attrs
    assert validate_stage(df, ctx=RunContext()).report['reasons'] == {'empty_turn': 1}  # no spec: structure only
    assert check_params(validate_stage, {'keep_other_reason': True})[0][1].endswith("did you mean 'keep_other_reasons'?")


@pytest.mark.parametrize('cmd', ['validate', 'export', 'dedup'])
def test_cli_bad_input_is_one_line(tmp_path, cmd):
    bad = tmp_path / 'bad.jsonl'
    bad.write_text('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n{not json\n')
    r = subprocess.run(['synthbench', cmd, str(bad), '-o', str(tmp_path / 'o.jsonl')], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert 'bad.jsonl' in line and 'line 2' in line, r.stderr
    r = subprocess.run(
        ['synthbench', cmd, str(SEEDS / 'task_api/seeds.jsonl'), '-o', str(tmp_path / 'o.txt')], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 2 and 'Traceback' not in r.stderr and 'o.txt' in r.stderr and not (tmp_path / 'o.txt').exists()
