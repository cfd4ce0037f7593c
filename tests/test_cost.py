"Cost, token counting and the `synthbench estimate` CLI."

import json, subprocess, time
import pytest
from synthbench.llm.cost import (
    PRICES,
    price_for,
    cost_usd,
    count_tokens,
    count_message_tokens,
    estimate,
    Estimate,
    cli_estimate,
    encoding_name,
)


def _write_jsonl(path, rows):
    path.write_text('\n'.join(json.dumps(r) for r in rows) + '\n', encoding='utf-8')
    return path


def _chat(i):
    return {
        'messages': [
            {'role': 'system', 'content': 'You manage tasks.'},
            {'role': 'user', 'content': f'Add a task: water the plants, number {i}'},
            {'role': 'assistant', 'content': f"Created task 'Water the plants #{i}'."},
        ]
    }


def test_every_price_is_a_pair_of_non_negative_numbers():
    for m, p in PRICES.items():
        assert len(p) == 2 and all(isinstance(x, (int, float)) and x >= 0 for x in p), m
    assert price_for('smollm2-135m-instruct') == (0.0, 0.0)


@pytest.mark.parametrize(
    'name,base',
    [
        ('gpt-4o-mini-2024-07-18', 'gpt-4o-mini'),
        ('openai/gpt-4.1-mini', 'gpt-4.1-mini'),
        ('gpt-4.1-mini-2025-04-14', 'gpt-4.1-mini'),
        ('o4-mini-2025-04-16', 'o4-mini'),
        ('gpt-5-nano-2025-08-07', 'gpt-5-nano'),
        ('anthropic/claude-3.7-sonnet', 'claude-3.7-sonnet'),
        ('claude-3-5-haiku-20241022', 'claude-3.5-haiku'),
        ('qwen/qwen-2.5-72b-instruct', 'qwen-2.5-72b-instruct'),
        ('GPT-4O', 'gpt-4o'),
    ],
)
def test_price_matching(name, base):
    assert price_for(name) == PRICES[base]


def test_listed_aliases_not_prefixes():
    assert price_for('gpt-4o-mini-search-preview') == PRICES['gpt-4o-mini']  # listed alias, not gpt-4o
    assert price_for('o3-mini-high') == PRICES['o3-mini']  # listed alias, not o3
    assert price_for('gpt-4o') != price_for('gpt-4o-mini')


@pytest.mark.parametrize(
    'name',
    [
        'gpt-4o-mini-realtime',
        'gpt-4o-mini-realtime-preview-2024-12-17',
        'gpt-4o-mini-tts',
        'gpt-4o-mini-2099-01-01',
        'o3-deep-research',
        'gpt-4.1-mini-whatever',
        'ft:davinci-002:org::x',
    ],
)
def test_exact_lookup_no_prefix_guess(name):
    assert price_for(name) is None  # before: priced as gpt-4o-mini / o3 / gpt-4.1-mini by prefix


def test_fine_tuned_prices():
    from synthbench.llm.cost import FT_PRICES

    assert price_for('ft:gpt-4o-mini:my-org::abc123') == FT_PRICES['gpt-4o-mini'] == (0.30, 1.20)
    assert price_for('ft:gpt-4o-mini-2024-07-18:my-org:custom-suffix:abc123') == (0.30, 1.20)
    assert price_for('ft:gpt-4o-2024-08-06:org::x') == (3.75, 15.0) and price_for('ft:gpt-3.5-turbo-0125:org::x') == (3.0, 6.0)
    assert price_for('ft:gpt-4.1-mini-2025-04-14:org::x') == (0.80, 3.20) and price_for('ft:gpt-4.1:org::x') == (3.0, 12.0)
    assert cost_usd('ft:gpt-4o-mini:o::x', 10**6, 10**6) == pytest.approx(1.5)
    assert price_for('ft:gpt-4o-mini:o::x', prices={'ft:gpt-4o-mini:o::x': (1, 2)}) == (1.0, 2.0)
    assert price_for('gpt-4o-2024-05-13') == (5.0, 15.0)  # a snapshot with its own price


def test_unknown_model_is_none_not_zero():
    assert price_for('totally-new-model') is None
    assert cost_usd('totally-new-model', 10**6, 10**6) == 0.0
    assert estimate([[{'role': 'user', 'content': 'x'}]], 'totally-new-model').usd is None


def test_override_in_place_of_table(monkeypatch):
    monkeypatch.setitem(PRICES, 'my-ft', (1.0, 3.0))
    assert cost_usd('my-ft', 10**6, 10**6) == pytest.approx(4.0)
    assert cost_usd('my-ft', 10**6, 0, prices={'my-ft': (2.0, 0.0)}) == pytest.approx(2.0)


def test_count_tokens_known_values_and_speed():
    # o200k ids of 'Hello world' are [13225, 2375]; cl100k [9906, 1917]; both 2 tokens.
    assert count_tokens('Hello world', 'gpt-4o') == 2 and count_tokens('Hello world', 'gpt-3.5-turbo') == 2
    assert count_tokens('こんにちは世界', 'gpt-4o') == 2 and count_tokens('こんにちは世界', 'gpt-4') == 4
    assert encoding_name('gpt-4o') == 'o200k_base' and encoding_name('gpt-4') == 'cl100k_base'
    texts = [f'Example number {i}: add a task to buy {i} apples before Friday.' for i in range(20_000)]
    count_tokens('warm up')
    t = time.perf_counter()
    total = sum(count_tokens(s) for s in texts)
    dt = time.perf_counter() - t
    assert total > 20_000 * 10
    assert dt < 5, f'20k distinct short texts took {dt:.1f}s'


def test_message_overhead_matches_openai_cookbook():
    # The cookbook's example conversation: gpt-4o reports prompt_tokens for it; our formula is 3/message + 3.
    msgs = [{'role': 'system', 'content': 'You are a helpful assistant.'}, {'role': 'user', 'content': 'Hi', 'name': 'bob'}]
    expect = (
        3
        + (3 + count_tokens('system') + count_tokens('You are a helpful assistant.'))
        + (3 + count_tokens('user') + count_tokens('Hi') + 1 + count_tokens('bob'))
    )
    assert count_message_tokens(msgs, 'gpt-4o') == expect


def test_estimate_typical_and_worst_case():
    prompts = [[{'role': 'user', 'content': 'Write a haiku about tasks.'}]] * 500
    e = estimate(prompts, 'gpt-4o-mini', max_tokens=256, expected_out=100)
    per = count_message_tokens(prompts[0], 'gpt-4o-mini')
    assert (e.calls, e.tokens_in, e.tokens_out, e.tokens_out_max) == (500, 500 * per, 50_000, 128_000)
    assert e.usd == pytest.approx((500 * per * 0.15 + 50_000 * 0.6) / 1e6)
    assert e.usd_max == pytest.approx((500 * per * 0.15 + 128_000 * 0.6) / 1e6)
    s = str(e)
    assert s.startswith('500 calls,') and 'gpt-4o-mini' in s and 'at most' in s
    assert '<table' in e._repr_html_() and '| calls | 500 |' in e._repr_markdown_()
    e3 = estimate(prompts, 'gpt-4o-mini', n=3)
    assert e3.calls == 1500 and e3.tokens_in == 3 * e.tokens_in and e3.tokens_out_max is None


def test_cli_estimate_text_and_json(tmp_path):
    f = _write_jsonl(tmp_path / 'tasks.jsonl', [_chat(i) for i in range(30)])
    r = subprocess.run(
        ['synthbench', 'estimate', str(f), '--model', 'gpt-4o-mini', '--max-tokens', '64', '--n', '2'], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('60 calls,') and 'gpt-4o-mini' in r.stdout and 'mean length of the 30 answers' in r.stdout
    r = subprocess.run(['synthbench', 'estimate', str(f), '--model', 'gpt-4o-mini', '--json'], capture_output=True, text=True)
    d = json.loads(r.stdout)
    prompt = _chat(0)['messages'][:2]
    assert d['calls'] == 30 and d['tokens_out_max'] == 30 * 256
    assert d['tokens_in'] == sum(count_message_tokens(_chat(i)['messages'][:2], 'gpt-4o-mini') for i in range(30))
    assert d['model'] == 'gpt-4o-mini' and d['usd'] > 0


def test_cli_text_label_rows_and_price_override(tmp_path, capsys):
    f = _write_jsonl(tmp_path / 'cls.jsonl', [{'text': 'Where is my parcel?', 'label': 'shipping'}] * 4)
    assert cli_estimate([str(f), '--model', 'my-model', '--price', '1', '2', '--expected-out', '3', '--json']) == 0
    d = json.loads(capsys.readouterr().out)
    tin = 4 * count_message_tokens([{'role': 'user', 'content': 'Where is my parcel?'}])
    assert (d['tokens_in'], d['tokens_out']) == (tin, 12)
    assert d['usd'] == pytest.approx((tin * 1 + 12 * 2) / 1e6)


def test_cli_bad_input_is_clear(tmp_path):
    r = subprocess.run(
        ['synthbench', 'estimate', str(tmp_path / 'missing.jsonl'), '--model', 'gpt-4o-mini'], capture_output=True, text=True
    )
    assert r.returncode != 0 and 'missing.jsonl' in r.stderr and 'no such file' in r.stderr
    bad = tmp_path / 'bad.jsonl'
    bad.write_text(json.dumps(_chat(1)) + '\n{"messages": [oops\n')
    r = subprocess.run(['synthbench', 'estimate', str(bad), '--model', 'gpt-4o-mini'], capture_output=True, text=True)
    assert r.returncode != 0 and 'bad.jsonl' in r.stderr and '2' in r.stderr, r.stderr
    r = subprocess.run(['synthbench', 'estimate', str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and '--model' in r.stderr
    r = subprocess.run(
        ['synthbench', 'estimate', str(_write_jsonl(tmp_path / 'u.jsonl', [_chat(1)])), '--model', 'mystery'],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and 'price unknown' in r.stdout and '--price' in r.stdout


def test_prompt_side_is_core_split_reply_with_trailing_turns():
    "The cost's request/answer cut is core.split_reply: every assistant turn at the end is the answer, multimodal text kept."
    import numpy as np
    from synthbench.core import split_reply
    from synthbench.llm.cost import prompt_side

    u, t = {'role': 'user', 'content': 'q'}, {'role': 'tool', 'tool_call_id': 'c1', 'content': 'ok'}
    call = {
        'role': 'assistant',
        'content': None,
        'tool_calls': [{'id': 'c1', 'type': 'function', 'function': {'name': 'f', 'arguments': '{}'}}],
    }
    parts = {'role': 'assistant', 'content': [{'type': 'text', 'text': 'b'}]}
    row = {'messages': [u, call, t, {'role': 'assistant', 'content': 'a'}, parts]}
    assert prompt_side(row) == ([u, call, t], 'ab')
    assert split_reply(row, trailing=True)[0] == prompt_side(row)[0]
    assert prompt_side({'messages': np.array([u, {'role': 'assistant', 'content': 'a'}], dtype=object)}) == ([u], 'a')  # parquet rows
    assert prompt_side({'messages': [u]}) == ([u], '')  # no reply: all prompt, empty answer
    assert prompt_side({'text': 'q', 'label': float('nan'), 'messages': None}) == ([u], '')
