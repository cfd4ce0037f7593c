"Human review: the label file and the ipywidgets review page, driven without a browser."

import json
import pytest
from synthbench.core import make_table
from synthbench.ui.review import ReviewWidget, apply_review, load_review_labels, record_review, review, review_path, review_sample


@pytest.fixture
def table():
    return make_table(
        [
            {
                'messages': [
                    {'role': 'user', 'content': f'Add a task: item {i}'},
                    {'role': 'assistant', 'content': f"Created task 'Item {i}'."},
                ]
            }
            for i in range(6)
        ]
        + [
            {
                'messages': [
                    {'role': 'user', 'content': 'hi'},
                    {'role': 'assistant', 'content': '<img src=x onerror=alert(1)><script>alert(2)</script>'},
                ]
            }
        ],
        source='generated',
    )


def lines(path):
    return [json.loads(l) for l in path.read_text().splitlines()]


def test_record_review_appends_complete_records(tmp_path):
    p = tmp_path / 'sub' / 'data.review.jsonl'
    record_review(p, 'id1', 'accept', reviewer='ann')
    record_review(p, 'id2', 'R', 'label wrong', reviewer='ann')
    recs = lines(p)
    assert [(r['id'], r['decision'], r['note'], r['reviewer']) for r in recs] == [
        ('id1', 'accept', '', 'ann'),
        ('id2', 'reject', 'label wrong', 'ann'),
    ]
    assert all(set(r) == {'id', 'decision', 'note', 'reviewer', 'timestamp'} and r['timestamp'].endswith('+00:00') for r in recs)
    with pytest.raises(ValueError, match="'accept' or 'reject'"):
        record_review(p, 'id3', 'skip')
    with pytest.raises(ValueError, match='id is needed'):
        record_review(p, '', 'accept')
    assert len(lines(p)) == 2


def test_load_review_labels_latest_wins_and_errors_name_line(tmp_path):
    p = tmp_path / 'l.jsonl'
    record_review(p, 'a', 'accept', reviewer='x')
    record_review(p, 'b', 'accept', reviewer='x')
    record_review(p, 'a', 'reject', 'truncated', reviewer='y')
    lab = load_review_labels(p)
    assert lab[['id', 'decision', 'note']].values.tolist() == [['b', 'accept', ''], ['a', 'reject', 'truncated']]
    assert len(load_review_labels(p, latest=False)) == 3
    with open(p, 'a') as f:
        f.write('{"id": "c", "decision": "maybe"}\n')
    with pytest.raises(ValueError, match=r"l\.jsonl, line 4: field 'decision'"):
        load_review_labels(p)
    q = tmp_path / 'q.jsonl'
    q.write_text('{"decision": "accept"}\n')
    with pytest.raises(ValueError, match="line 1: field 'id' is missing"):
        load_review_labels(q)


def test_review_path_next_to_data():
    assert str(review_path('/d/run1/train.jsonl')) == '/d/run1/train.review.jsonl'


def test_widget_clicks_write_the_file(table, tmp_path):
    p = tmp_path / 'w.review.jsonl'
    w = ReviewWidget(table, p, n=None, reviewer='tester', unreviewed_first=False)
    assert w.current['id'] == table.id[0] and '1 / 7' in w.status.value
    w.accept_button.click()
    assert w.i == 1 and lines(p)[-1] == {**lines(p)[-1], 'id': table.id[0], 'decision': 'accept', 'reviewer': 'tester'}
    w.note.value = 'answer names the wrong item'
    w.reject_button.click()
    assert lines(p)[-1]['decision'] == 'reject' and lines(p)[-1]['note'] == 'answer names the wrong item' and w.note.value == ''
    w.next_button.click()
    w.next_button.click()
    assert w.i == 4
    w.prev_button.click()
    assert w.i == 3
    for _ in range(10):
        w.next_button.click()
    assert w.i == 6  # stays on the last row
    assert '&lt;script&gt;' in w.html.value and '<script>' not in w.html.value and '<img' not in w.html.value
    w.accept_button.click()  # deciding on the last row keeps it on screen
    assert w.i == 6 and 'this one: <b>accept</b>' in w.status.value
    assert [r['id'] for r in lines(p)] == [table.id[0], table.id[1], table.id[6]]


def test_widget_keys(table, tmp_path):
    p = tmp_path / 'k.review.jsonl'
    w = review(table, p, n=None, reviewer='kb', unreviewed_first=False)
    w.keys.value = 'a'
    assert w.keys.value == '' and w.i == 1
    w.keys.value = 'R'
    assert w.i == 2
    w.keys.value = 'p'
    assert w.i == 1
    w.keys.value = 'n'
    w.keys.value = 'x'
    assert w.i == 2  # unknown keys do nothing
    assert [(r['id'], r['decision']) for r in lines(p)] == [(table.id[0], 'accept'), (table.id[1], 'reject')]


def test_widget_sample_is_seeded_and_resumes(table, tmp_path):
    p = tmp_path / 's.review.jsonl'
    a, b = review(table, p, n=3, seed=1), review(table, p, n=3, seed=1)
    assert [r['id'] for r in a.rows] == [r['id'] for r in b.rows] and len(a.rows) == 3
    first = a.current['id']
    a.accept_button.click()
    c = review(table, p, n=3, seed=1)  # a new session: unreviewed rows first
    assert c.rows[-1]['id'] == first and c.decisions == {first: 'accept'}
    assert apply_review(table, p).set_index('id').loc[first, 'review_decision'] == 'accept'


def test_widget_shows_judge_unless_blind(table, tmp_path):
    t = table.assign(judge_overall=2.5, judge_pass=False, judge_reason='rejected: <b>x</b>')
    assert 'judge: overall 2.50' in review(t, tmp_path / 'j.jsonl', n=1).html.value
    assert '&lt;b&gt;x' in review(t, tmp_path / 'j.jsonl', n=1).html.value
    assert 'judge:' not in review(t, tmp_path / 'j.jsonl', n=1, show_judge=False).html.value


def test_empty_table(tmp_path):
    w = review(make_table([]), tmp_path / 'e.jsonl')
    assert w.current is None and w.decide('accept') is None and 'nothing to review' in w.status.value


def test_saved_note_shown_on_revisit_and_summary(tmp_path, table):
    p = tmp_path / 'd.review.jsonl'
    w = ReviewWidget(table, p, n=None, reviewer='ann')
    w.note.value = 'wrong tone'
    w.decide('reject')
    w.decide('accept')
    assert w.summary() == dict(accept=1, reject=1, left=len(table) - 2)
    assert 'accepted 1, rejected 1' in w.status.value
    w.go(-2)
    assert w.note.value == 'wrong tone'
    w2 = ReviewWidget(table, p, n=None, reviewer='ann', unreviewed_first=False)  # a new session over the same file
    assert w2.note.value == 'wrong tone'


def test_stratified_fraction_and_filter():
    df = make_table([{'text': f't{i}', 'label': 'x', 'category': 'a' if i < 90 else 'b'} for i in range(100)])
    s = review_sample(df, 0.1, by='category', seed=1)
    assert len(s) == 10 and (df.iloc[s]['category'] == 'b').sum() == 1
    assert review_sample(df, 0.1, by='category', seed=1) == s
    assert set(df.iloc[review_sample(df, None, where={'category': 'b'})]['category']) == {'b'}
    w = review(df, '/dev/null/x.jsonl', n=0.2, by='category')
    assert len(w.rows) == 20
    with pytest.raises(KeyError, match="cannot filter on 'nope'"):
        review_sample(df, 5, where={'nope': 1})
