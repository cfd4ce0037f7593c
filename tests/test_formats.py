"Loading and saving examples: every file type and form, bad files with clear errors, lossless round trips."

import json, warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa, pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from synthbench.core import content_id
from synthbench.formats import (
    InputError,
    load_examples,
    save_examples,
    load_table,
    save_table,
    from_records,
    record_to_example,
    to_chatml,
    from_chatml,
)

MSGS = [
    {'role': 'system', 'content': 'You are terse.'},
    {'role': 'user', 'content': 'Add "milk" 🥛 to my list\nplease'},
    {'role': 'assistant', 'content': "Created task: 'Buy milk' | Priority: low | Due: none"},
]


def write_jsonl(p, recs):
    p.write_text(''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in recs), encoding='utf-8')
    return p


# ---------- every form in every file type ----------


def test_sharegpt_jsonl(tmp_path):
    p = write_jsonl(
        tmp_path / 's.jsonl',
        [
            {
                'conversations': [
                    {'from': 'system', 'value': 'You are terse.'},
                    {'from': 'human', 'value': MSGS[1]['content']},
                    {'from': 'gpt', 'value': MSGS[2]['content']},
                ],
                'category': 'create',
                'difficulty': 'easy',
            }
        ],
    )
    df = load_examples(p)
    assert df.loc[0, 'messages'] == MSGS
    assert (df.loc[0, 'category'], df.loc[0, 'difficulty'], df.loc[0, 'source']) == ('create', 'easy', 'seed')
    assert df.loc[0, 'id'] == content_id(MSGS)


def test_sharegpt_top_level_system_and_named_format(tmp_path):
    p = write_jsonl(
        tmp_path / 's.jsonl', [{'system': 'S', 'conversations': [{'from': 'human', 'value': 'q'}, {'from': 'gpt', 'value': 'a'}]}]
    )
    assert load_examples(p, format='sharegpt').loc[0, 'messages'][0] == {'role': 'system', 'content': 'S'}
    with pytest.raises(InputError, match=r"line 1, field 'instruction'"):
        load_examples(p, format='alpaca')


def test_alpaca_json_array_and_history(tmp_path):
    p = tmp_path / 'a.json'
    p.write_text(
        json.dumps(
            [
                {'instruction': 'Translate', 'input': 'chat', 'output': 'cat', 'difficulty': 'easy'},
                {'instruction': 'And dog?', 'input': '', 'output': 'chien', 'history': [['Translate cat', 'chat']]},
            ],
            ensure_ascii=False,
        ),
        encoding='utf-8',
    )
    df = load_examples(p, source='real')
    assert df.loc[0, 'messages'] == [{'role': 'user', 'content': 'Translate\n\nchat'}, {'role': 'assistant', 'content': 'cat'}]
    assert [m['role'] for m in df.loc[1, 'messages']] == ['user', 'assistant', 'user', 'assistant']
    assert set(df['source']) == {'real'} and df.loc[0, 'difficulty'] == 'easy'


def test_messages_csv_and_text_label_csv(tmp_path):
    p = tmp_path / 'm.csv'
    pd.DataFrame({'messages': [json.dumps(MSGS, ensure_ascii=False)], 'category': ['create'], 'score': [3]}).to_csv(p, index=False)
    df = load_examples(p)
    assert df.loc[0, 'messages'] == MSGS and df.loc[0, 'score'] == 3
    q = tmp_path / 't.csv'
    q.write_text('text,label,channel\n"Refund, please",billing,email\n"multi\nline ticket",technical,chat\n', encoding='utf-8')
    df = load_examples(q)
    assert df['text'].tolist() == ['Refund, please', 'multi\nline ticket'] and df['channel'].tolist() == ['email', 'chat']


def test_external_parquet_with_nested_messages(tmp_path):
    "A Parquet file written by another tool (messages as a list<struct> column) loads as plain lists of dicts."
    p = tmp_path / 'hf.parquet'
    pq.write_table(pa.table({'messages': [MSGS, MSGS[1:]], 'category': ['a', 'b']}), p)
    df = load_examples(p)
    assert df.loc[0, 'messages'] == MSGS and isinstance(df.loc[1, 'messages'], list)


def test_chatml_text_detected(tmp_path):
    p = write_jsonl(tmp_path / 'c.jsonl', [{'text': to_chatml(MSGS)}])
    assert load_examples(p).loc[0, 'messages'] == MSGS


def test_rename_maps_other_columns(tmp_path):
    p = write_jsonl(tmp_path / 'q.jsonl', [{'question': 'Where is my parcel?', 'answer': 'shipping'}])
    df = load_examples(p, rename={'question': 'text', 'answer': 'label'})
    assert (df.loc[0, 'text'], df.loc[0, 'label']) == ('Where is my parcel?', 'shipping')


# ---------- bad files: clear errors naming file, line, field, fix ----------

BAD = {
    'broken_json_line': (
        'bad.jsonl',
        b'{"text": "a", "label": "x"}\n{"text": "b", "label": }\n',
        r"bad\.jsonl, line 2: not valid JSON .*Fix: each line must be one complete JSON object",
    ),
    'wrong_columns': (
        'cols.jsonl',
        b'{"prompt": "a", "completion": "b"}\n',
        r"cols\.jsonl, line 1: no content field: found keys \['prompt', 'completion'\].*Fix: rename the columns",
    ),
    'typo_column': ('typo.jsonl', b'{"conversation": [{"from": "human", "value": "hi"}]}\n', r"did you mean \['conversations'\]"),
    'empty_file': ('empty.jsonl', b'', r"empty\.jsonl: the file is empty"),
    'blank_lines_only': ('blank.jsonl', b'\n\n  \n', r"the file is empty"),
    'utf16': (
        'u16.jsonl',
        '{"text": "café", "label": "x"}\n'.encode('utf-16'),
        r"u16\.jsonl: the file is UTF-16 encoded .*Fix: re-save it as UTF-8",
    ),
    'utf16_no_bom': ('u16le.jsonl', '{"text": "café", "label": "x"}\n'.encode('utf-16-le'), r"looks UTF-16/UTF-32 encoded"),
    'latin1': (
        'l1.csv',
        'text,label\nok,a\ncafé crème,b\n'.encode('latin-1'),
        r"l1\.csv, line 3: byte 0xe9 at column 4 is not valid UTF-8; it looks Latin-1.*encoding='latin-1'",
    ),
    'not_object_line': ('arr.jsonl', b'[1, 2]\n', r"arr\.jsonl, line 1: expected a JSON object per record, got list"),
    'messages_not_list': ('m.jsonl', b'{"messages": {"role": "user"}}\n', r"line 1, field 'messages': must be a list"),
    'message_without_role': ('r.jsonl', b'{"messages": [{"content": "hi"}]}\n', r"message 0 has no string 'role'"),
    'unknown_sharegpt_speaker': (
        'sp.jsonl',
        b'{"conversations": [{"from": "humann", "value": "hi"}]}\n',
        r"from='humann'.*did you mean 'human'",
    ),
    'alpaca_missing_output': ('al.jsonl', b'{"instruction": "hi"}\n', r"line 1, field 'output': missing"),
    'csv_extra_field': ('x.csv', b'text,label\na,b,c\n', r"x\.csv, line 2: has 3 fields but the header has 2"),
    'json_is_jsonl': ('j.json', b'{"text": "a"}\n{"text": "b"}\n', r"rename it to \.jsonl"),
    'unknown_suffix': ('data.xlsx', b'x', r"unknown file type '\.xlsx'"),
    'corrupt_parquet': ('c.parquet', b'PAR1 not really', r"cannot be read as Parquet"),
    'text_not_string': ('n.jsonl', b'{"text": 5, "label": "a"}\n', r"field 'text': must be a string"),
}


@pytest.mark.parametrize('name', list(BAD))
def test_bad_files_give_clear_errors(tmp_path, name):
    fname, data, pattern = BAD[name]
    p = tmp_path / fname
    p.write_bytes(data)
    with pytest.raises(InputError, match=pattern) as e:
        load_examples(p)
    assert str(p) in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match='file not found'):
        load_examples(tmp_path / 'nope.jsonl')


def test_explicit_encoding_reads_latin1(tmp_path):
    p = tmp_path / 'l1.csv'
    p.write_bytes('text,label\ncafé,b\n'.encode('latin-1'))
    assert load_examples(p, encoding='latin-1').loc[0, 'text'] == 'café'


def test_lenient_skips_and_reports_every_line(tmp_path):
    p = tmp_path / 'mixed.jsonl'
    p.write_bytes(
        b'{"text": "ok", "label": "a"}\n{broken\n{"prompt": "no content"}\n'
        + 'caf\xe9'.encode('latin-1')
        + b'\n{"text": "fine", "label": "b"}\n'
    )
    with pytest.raises(InputError):
        load_examples(p)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        df = load_examples(p, lenient=True)
    assert df['text'].tolist() == ['ok', 'fine']
    lines = [l for l, _ in df.attrs['skipped']]
    assert sorted(lines) == ['line 2', 'line 3', 'line 4']
    reasons = dict(df.attrs['skipped'])
    assert 'not valid JSON' in reasons['line 2'] and 'no content field' in reasons['line 3'] and 'UTF-8' in reasons['line 4']
    assert len(w) == 1 and 'skipped 3 of 5 records' in str(w[0].message)


def test_no_warning_when_nothing_skipped(tmp_path):
    p = write_jsonl(tmp_path / 'ok.jsonl', [{'text': 'a', 'label': 'b'}])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        df = load_examples(p, lenient=True)
    assert df.attrs['skipped'] == []


# ---------- round trips ----------

TRICKY = [
    'emoji 🎉🚀 and ZWJ 👩‍💻',
    '中文：准备周报，日本語のテキスト、한국어',
    'line one\nline two\r\nline three\ttab',
    'quotes "double" \'single\' `back` and \\ backslash',
    'comma, semicolon; pipe | <b>html</b> & amp',
    '  leading and trailing spaces  ',
]


def tricky_table():
    rows = []
    for i, t in enumerate(TRICKY):
        rows.append(
            {
                'messages': [
                    {'role': 'system', 'content': 'sys ' + t},
                    {'role': 'user', 'content': t},
                    {'role': 'assistant', 'content': t[::-1]},
                    {'role': 'user', 'content': f'more {i}'},
                    {'role': 'assistant', 'content': 'ok ' + t},
                ],
                'category': f'c{i % 2}',
                'difficulty': 'hard',
            }
        )
    return from_records(rows)


@pytest.mark.parametrize(
    'fmt,suffix',
    [
        ('sharegpt', 'jsonl'),
        ('alpaca', 'jsonl'),
        ('alpaca', 'json'),
        ('messages', 'jsonl'),
        ('chatml', 'jsonl'),
        ('table', 'parquet'),
        ('table', 'jsonl'),
        ('table', 'csv'),
        ('table', 'json'),
    ],
)
def test_round_trip_keeps_content(tmp_path, fmt, suffix):
    df = tricky_table()
    back = load_examples(save_examples(df, tmp_path / f'out.{suffix}', fmt))
    assert back['messages'].tolist() == df['messages'].tolist()
    if fmt not in ('messages', 'chatml'):
        assert back['id'].tolist() == df['id'].tolist() and back['category'].tolist() == df['category'].tolist()
    raw = (tmp_path / f'out.{suffix}').read_bytes()
    if suffix != 'parquet':
        assert '🎉'.encode() in raw and b'\\u' not in raw  # unicode written as is


def test_text_label_round_trip(tmp_path):
    df = from_records([{'text': t, 'label': l, 'persona': 'terse'} for t, l in zip(TRICKY, 'abcdef')])
    for fmt, suf in [('text', 'jsonl'), ('table', 'parquet'), ('table', 'csv')]:
        back = load_examples(save_examples(df, tmp_path / f'o.{suf}', fmt))
        assert back['text'].tolist() == TRICKY and back['label'].tolist() == list('abcdef')


def test_parquet_stores_messages_as_json_string(tmp_path):
    df = tricky_table()
    p = save_table(df, tmp_path / 't.parquet')
    schema = pq.read_schema(p)
    assert schema.field('messages').type in (pa.string(), pa.large_string())
    assert 'messages' in json.loads(schema.metadata[b'synthbench'])['json_columns']
    back = load_table(p)
    assert back['messages'].tolist() == df['messages'].tolist()
    assert back['round'].tolist() == df['round'].tolist() and back['cost_usd'].tolist() == df['cost_usd'].tolist()


def test_table_keeps_stage_columns_and_mixed_types(tmp_path):
    df = from_records(
        [
            {'text': 'a', 'label': 'x', 'judge_reasons': {'clarity': 'good'}, 'tags': ['a', 'b'], 'mixed': 1},
            {'text': 'b', 'label': 'y', 'judge_reasons': None, 'tags': [], 'mixed': 'two'},
        ]
    )
    df['valid'] = [True, False]
    for suf in ('parquet', 'jsonl'):
        back = load_table(save_table(df, tmp_path / f't.{suf}'))
        assert back['judge_reasons'].tolist()[0] == {'clarity': 'good'} and back['tags'].tolist() == [['a', 'b'], []]
        assert back['mixed'].tolist() == [1, 'two'] and back['valid'].tolist() == [True, False]


def test_cannot_write_text_rows_as_chat(tmp_path):
    df = from_records([{'text': 'a', 'label': 'x'}])
    with pytest.raises(ValueError, match=r'cannot be written as sharegpt.*text/label row'):
        save_examples(df, tmp_path / 'o.jsonl', 'sharegpt')


ALPHABET = st.characters(blacklist_categories=('Cs',), blacklist_characters='\x00')
content = st.text(ALPHABET, min_size=1, max_size=40).filter(lambda s: '<|im_end|>' not in s and '<|im_start|>' not in s)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    turns=st.lists(st.tuples(content, content), min_size=1, max_size=3),
    system=st.one_of(st.none(), content),
    fmt=st.sampled_from(['sharegpt', 'alpaca', 'messages', 'chatml', 'table']),
)
def test_round_trip_property(tmp_path_factory, turns, system, fmt):
    msgs = ([{'role': 'system', 'content': system}] if system else []) + [
        m for q, a in turns for m in ({'role': 'user', 'content': q}, {'role': 'assistant', 'content': a})
    ]
    df = from_records([{'messages': msgs, 'category': 'x'}])
    d = tmp_path_factory.mktemp('rt')
    for suf in ('jsonl', 'parquet', 'csv') if fmt == 'table' else ('jsonl',):
        back = load_examples(save_examples(df, d / f'o.{suf}', fmt))
        assert back.loc[0, 'messages'] == msgs, (fmt, suf)


def test_seeds_load_in_every_form(tmp_path):
    "The shipped seed files use three different forms; each loads and survives a trip through the others."
    root = Path(__file__).parent.parent / 'seeds'
    for f in ('task_api/seeds.jsonl', 'policy_qa/seeds.json'):
        df = load_examples(root / f)
        for fmt in ('sharegpt', 'alpaca', 'messages'):
            assert load_examples(save_examples(df, tmp_path / f'{fmt}.jsonl', fmt))['messages'].tolist() == df['messages'].tolist()
