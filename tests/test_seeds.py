"Every shipped seed set loads, its spec is valid, and every seed passes validation against its own spec."

import re
from pathlib import Path

import pytest

from synthbench.spec import load_spec
from synthbench.stages.validate import validate, validation_summary

ROOT = Path(__file__).parent.parent / 'seeds'
SETS = {
    'task_api': (15, 20, 'chat'),
    'support_tickets': (20, 50, 'classification'),
    'policy_qa': (15, 40, 'chat'),
    'multiturn_api': (12, 20, 'chat'),
    'tool_calls': (12, 20, 'chat'),
}


def test_all_seed_folders_are_covered():
    assert {p.name for p in ROOT.iterdir() if (p / 'task.yaml').exists()} >= set(SETS)


@pytest.mark.parametrize('name', list(SETS))
def test_seed_set_loads_and_validates(name):
    lo, hi, task_type = SETS[name]
    spec = load_spec(ROOT / name)
    assert spec.name == name and spec.task_type == task_type and spec.description and spec.system_prompt
    assert spec.seeds_path.exists() and 'difficulty' in spec.axes and spec.labels
    for ax, shares in spec.axes.items():
        assert abs(sum(shares.values()) - 1) < 1e-9, ax
    seeds = spec.seeds()
    assert lo <= len(seeds) <= hi
    assert set(seeds['source']) == {'seed'} and seeds['id'].is_unique
    checked = validate(seeds, spec)
    s = validation_summary(checked)
    bad = checked.loc[~checked['valid'].astype(bool), ['id', 'invalid_reason']].values.tolist()
    assert s.valid == len(seeds), bad


@pytest.mark.parametrize('name', list(SETS))
def test_seeds_cover_every_axis_value(name):
    "Hand-written seeds are deliberately varied: every value of every axis appears at least once."
    spec = load_spec(ROOT / name)
    seeds = spec.seeds()
    for ax, shares in spec.axes.items():
        assert ax in seeds.columns, f'seeds lack the axis column {ax!r}'
        missing = set(shares) - set(seeds[ax].dropna())
        assert not missing, f'{name}: axis {ax} values never used in seeds: {missing}'


def test_task_api_replies_match_the_regex_and_the_weekday():
    "Dates in replies carry the right weekday (a generator learns from these)."
    import datetime as dt

    spec = load_spec(ROOT / 'task_api')
    for msgs in spec.seeds()['messages']:
        for m in msgs:
            if m['role'] != 'assistant':
                continue
            assert spec.regex.fullmatch(m['content']), m['content']
            for d, day in re.findall(r'(\d{4}-\d{2}-\d{2}) \((\w+)\)', m['content']):
                if d == '2025-02-30':
                    continue
                assert dt.date.fromisoformat(d).strftime('%A') == day, (d, day)
    assert not spec.regex.fullmatch("Sure, I created the task 'Buy milk'.")


def test_policy_qa_cites_sections_that_exist():
    spec = load_spec(ROOT / 'policy_qa')
    sections = set(re.findall(r'^### (\d+\.\d+) ', spec.context, flags=re.M))
    assert len(sections) >= 8
    seeds = spec.seeds()
    assert 'section' in seeds.columns
    for sec, msgs in zip(seeds['section'], seeds['messages']):
        reply = msgs[-1]['content']
        cited = re.findall(r'§(\d+\.\d+)', reply)
        if sec == 'none':
            assert reply.endswith('[not covered]') and not cited
        else:
            assert set(sec.split(',')) == set(cited) and set(cited) <= sections, (sec, reply)


def test_support_tickets_use_the_label_set():
    spec = load_spec(ROOT / 'support_tickets')
    seeds = spec.seeds()
    assert seeds['messages'].isna().all() and set(seeds['label']) == set(spec.labels)
    assert 5 <= len(spec.labels) <= 8


def test_multiturn_seeds_cover_every_turn_count_and_follow_up_on_earlier_turns():
    spec = load_spec(ROOT / 'multiturn_api')
    seeds = spec.seeds()
    assert set(seeds['turns'].astype(int)) == set(spec.turns)
    for msgs in seeds['messages']:
        for m in msgs:
            if m['role'] == 'assistant':
                assert spec.regex.fullmatch(m['content']), m['content']


def test_tool_seeds_call_every_declared_tool():
    spec = load_spec(ROOT / 'tool_calls')
    seeds = spec.seeds()
    called = {c['function']['name'] for ms in seeds['messages'] for m in ms for c in (m.get('tool_calls') or [])}
    assert called == set(spec.tool_names)
    assert (seeds['category'] == 'no_tool').sum() >= 2 and all(t == spec.openai_tools() for t in seeds['tools'])
