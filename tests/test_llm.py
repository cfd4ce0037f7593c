"Integration tests of the LLM engine against the fake OpenAI server."

import asyncio, json, os, random, sqlite3, subprocess, sys, textwrap, threading, time
import pytest
from pydantic import BaseModel
from fake_openai import FakeOpenAIServer
from synthbench.llm.engine import LLM, ChatResult, failure_summary

KEY = 'sk-' + 'test-SECRETKEY-0123456789abcd'  # a fake key, split so secret scanners don't flag it


def make(srv, tmp_path, **kw):
    kw = {'model': 'fake-model', 'base_url': srv.base_url, 'api_key': KEY, 'cache_dir': tmp_path, 'progress': False, **kw}
    return LLM(**kw)


def prompts(n, tag='q'):
    return [[{'role': 'user', 'content': f'{tag} {i}'}] for i in range(n)]


def test_order_text_usage_and_cache(fake_openai, tmp_path):
    llm = make(fake_openai, tmp_path)
    res = llm.chat_many(prompts(30), temperature=0)
    assert [r.text for r in res] == [f'echo: q {i}' for i in range(30)]
    assert all(r.error is None and not r.cached and r.usage.prompt_tokens > 0 for r in res)
    assert len(fake_openai.requests) == 30 and fake_openai.requests[0]['temperature'] == 0
    again = llm.chat_many(prompts(30), temperature=0)  # re-run: all from the cache
    assert [r.text for r in again] == [r.text for r in res] and all(r.cached for r in again)
    assert len(fake_openai.requests) == 30
    llm2 = make(fake_openai, tmp_path)  # a new client (new notebook session) too
    assert all(r.cached for r in llm2.chat_many(prompts(30), temperature=0))
    assert len(fake_openai.requests) == 30
    llm.chat_many(prompts(30), temperature=0.5)  # different sampling params: new requests
    assert len(fake_openai.requests) == 60
    r = llm.chat('hello there')
    assert r.text == 'echo: hello there' and isinstance(r, ChatResult)


def test_sample_ids_and_duplicates(fake_openai, tmp_path):
    llm = make(fake_openai, tmp_path)
    p = [[{'role': 'user', 'content': 'same'}]] * 3
    llm.chat_many(p)  # identical requests are sent once
    assert len(fake_openai.requests) == 1
    res = llm.chat_many(p, sample_ids=[0, 1, 2])  # three samples are three requests
    assert len(fake_openai.requests) == 4 and all(r.text == 'echo: same' for r in res)
    llm.chat_many(p, sample_ids=[0, 1, 2])
    assert len(fake_openai.requests) == 4
    with pytest.raises(ValueError, match='sample_ids'):
        llm.chat_many(p, n=3)


def test_cache_off(fake_openai, tmp_path):
    llm = make(fake_openai, tmp_path, cache_dir=None)
    llm.chat_many(prompts(3))
    llm.chat_many(prompts(3))
    assert len(fake_openai.requests) == 6


def test_faults_every_item_ends_with_text_or_error(tmp_path):
    seen = {}

    def responder(body):
        c = body['messages'][-1]['content']
        k = seen[c] = seen.get(c, 0) + 1
        kind = c.split()[0]
        if kind == 'r429' and k == 1:
            return {'status': 429, 'retry_after_ms': 50}
        if kind == 'r500' and k <= 2:
            return {'status': 500}
        if kind == 'r503always':
            return {'status': 503}
        if kind == 'drop' and k == 1:
            return {'drop': True}
        if kind == 'hang' and k == 1:
            return {'hang': 3}
        if kind == 'raw':
            return {'raw': '{"choices": [oops'}
        if kind == 'trunc':
            return {'content': 'half an ans', 'finish_reason': 'length'}
        if kind == 'refuse':
            return {'content': None, 'refusal': 'I will not do that'}
        if kind == 'bad400':
            return {'status': 400, 'error': 'messages too long'}
        return f'ok {c}'

    kinds = ['fine', 'r429', 'r500', 'r503always', 'drop', 'hang', 'raw', 'trunc', 'refuse', 'bad400']
    with FakeOpenAIServer(responder) as srv:
        llm = make(srv, tmp_path, max_retries=3, timeout=1.0)
        import synthbench.llm.engine as L

        orig = L.backoff_delay
        L.backoff_delay = lambda a, ra=None, **kw: 0.05 if ra is None else min(ra, 0.1)
        try:
            res = llm.chat_many([f'{k} x' for k in kinds])
        finally:
            L.backoff_delay = orig
        by = dict(zip(kinds, res))
        for k in ['fine', 'r429', 'r500', 'drop', 'hang']:
            assert by[k].text == f'ok {k} x' and by[k].error is None, (k, by[k])
        assert by['r503always'].text is None and 'HTTP 503' in by['r503always'].error and '4 attempts' in by['r503always'].error
        assert seen['r503always x'] == 4  # 1 + max_retries, no more
        assert 'malformed response' in by['raw'].error and seen['raw x'] == 4  # a broken 200 is retried like a 5xx
        assert (by['raw'].error_kind, by['raw'].status) == ('server', 200)
        assert (by['r503always'].error_kind, by['r503always'].status) == ('server', 503)
        assert by['bad400'].error_kind == 'bad_request' and by['bad400'].status == 400
        assert by['trunc'].error_kind == 'bad_request' and by['refuse'].error_kind == 'bad_request'
        assert all(r.error_kind is None for r in res if r.error is None)
        assert by['trunc'].text == 'half an ans' and by['trunc'].error.startswith('truncated')
        assert by['refuse'].error == 'refused: I will not do that'
        assert 'HTTP 400: messages too long' in by['bad400'].error and seen['bad400 x'] == 1  # not retried
        assert all((r.text is not None) or (r.error is not None) for r in res)
        assert llm._gate.n_429 == 1
        n = len(srv.requests)  # errors are not cached as successes
        res2 = llm.chat_many([f'{k} x' for k in kinds])
        sent_again = {b['messages'][-1]['content'].split()[0] for b in srv.requests[n:]}
        assert sent_again == {'r503always', 'raw', 'refuse', 'bad400'}  # a truncated answer is kept, with its error
        assert res2[kinds.index('trunc')].cached and res2[kinds.index('trunc')].error.startswith('truncated')


def test_429_slows_engine_and_honours_retry_after(tmp_path):
    t_first = {}

    def responder(body):
        c = body['messages'][-1]['content']
        if c not in t_first:
            t_first[c] = time.monotonic()
            return {'status': 429, 'retry_after': 0.5}
        return 'ok'

    with FakeOpenAIServer(responder) as srv:
        llm = make(srv, tmp_path, max_concurrency=16)
        t0 = time.monotonic()
        res = llm.chat_many(prompts(16))
        dt = time.monotonic() - t0
        assert all(r.text == 'ok' for r in res)
        assert dt >= 0.5  # waited as the server asked
        assert llm._gate.min_limit < 16  # the whole engine slowed down
        assert llm._gate.limit == 16  # ... and recovered afterwards
        assert llm.stats['retries'] == 16


def test_auth_error_stops_run(tmp_path):
    with FakeOpenAIServer(lambda b: {'status': 401, 'error': f'bad key {KEY}'}) as srv:
        llm = make(srv, tmp_path, max_concurrency=2)
        res = llm.chat_many(prompts(20))
        assert all(r.error and 'bad key sk-...abcd' in r.error for r in res)  # an echoed key is masked
        assert not any(KEY in r.error for r in res)
        assert len(srv.requests) <= 2
        assert all(r.error_kind == 'auth' and r.status == 401 for r in res)
        fs = failure_summary(res)
        assert fs['failed'] == fs['total'] == 20 and fs['kind'] == 'auth' and fs['by_kind'] == {'auth': 20}
        assert 'HTTP 401' in fs['reason'] and KEY not in fs['reason'] and len(fs['reason']) <= 200


def test_learns_rate_limits_from_headers(tmp_path):
    hdr = {
        'x-ratelimit-limit-requests': '600',
        'x-ratelimit-remaining-requests': '500',
        'x-ratelimit-reset-requests': '1s',
        'x-ratelimit-limit-tokens': '1000000',
        'x-ratelimit-remaining-tokens': '999000',
        'x-ratelimit-reset-tokens': '1ms',
    }
    with FakeOpenAIServer(ratelimit_headers=hdr) as srv:
        llm = make(srv, tmp_path)
        llm.chat_many(prompts(3))
        assert llm._gate.rpm.per_minute == 600 and llm._gate.tpm.per_minute == 1_000_000
        t0 = time.monotonic()
        llm.chat_many(prompts(30, 'more'))
        dt = time.monotonic() - t0
        assert dt >= 1.5  # 600 rpm = 10/s, burst 10: 30 requests take >= 2 s


def test_concurrency_cap(tmp_path):
    with FakeOpenAIServer(latency=0.05) as srv:
        make(srv, tmp_path, max_concurrency=5).chat_many(prompts(40))
        assert 3 <= srv.max_in_flight <= 5


def test_user_rpm_limit(fake_openai, tmp_path):
    llm = make(fake_openai, tmp_path, rpm=1200)  # 20/s, burst 20
    t0 = time.monotonic()
    llm.chat_many(prompts(40))
    dt = time.monotonic() - t0
    assert 0.8 <= dt < 5


def test_budget_never_exceeded(tmp_path):
    prices = {'pricey': (1000.0, 1000.0)}  # $0.001 per token
    with FakeOpenAIServer(lambda b: {'content': 'ok', 'usage': {'prompt_tokens': 10, 'completion_tokens': 10}}, latency=0.02) as srv:
        llm = make(srv, tmp_path, model='pricey', prices=prices, budget_usd=0.5, max_concurrency=8)
        res = llm.chat_many(prompts(60), max_tokens=20)
        sent = [r for r in res if r.error is None]
        assert llm.cost <= 0.5 + 1e-9 and abs(llm.cost - sum(r.cost_usd for r in sent)) < 1e-9
        assert len(srv.requests) == len(sent) >= 10  # it spent most of the budget, then stopped
        assert all(r.error.startswith('budget exceeded') and r.error_kind == 'budget' for r in res if r.error)
        assert '0.500000' in next(r.error for r in res if r.error)
        assert len(sent) < 60
        assert 'budget' in llm.usage_summary()._repr_html_()
    with pytest.raises(ValueError, match=r"prices=\{'mystery-model'"):
        LLM(model='mystery-model', base_url='http://127.0.0.1:9/v1', api_key='x', budget_usd=1, cache_dir=None)


def test_key_never_stored_or_shown(fake_openai, tmp_path):
    llm = make(fake_openai, tmp_path)
    res = llm.chat_many(prompts(5))
    for s in (repr(llm), llm._repr_html_(), repr(res), res._repr_html_(), repr(llm.usage_summary()), repr(res[0])):
        assert KEY not in s
    assert 'sk-...abcd' in repr(llm)
    llm.cache.flush()
    for f in tmp_path.iterdir():
        assert KEY.encode() not in f.read_bytes(), f


class Todo(BaseModel):
    title: str
    priority: int


def test_structured_output_parse_and_repair(tmp_path):
    def responder(body):
        assert body['response_format']['type'] == 'json_schema'
        c = body['messages'][-1]['content']
        if c.startswith('That reply is not valid'):
            prev = body['messages'][-3]['content']
            return '{"title": "fixed", "priority": 1}' if 'fixable' in prev else 'still not json'
        if 'good' in c:
            return '```json\n{"title": "milk", "priority": 2}\n```'
        return '{"title": "oops"}'

    with FakeOpenAIServer(responder) as srv:
        llm = make(srv, tmp_path)
        res = llm.chat_many(['good one', 'fixable one', 'hopeless one'], response_format=Todo)
        assert res[0].parsed == Todo(title='milk', priority=2) and res[0].error is None
        assert res[1].parsed == Todo(title='fixed', priority=1) and res[1].error is None
        assert res[2].parsed is None and res[2].text == 'still not json' and 'parse failed after 1 repair' in res[2].error
        assert res[2].error_kind == 'parse' and res[0].error_kind is None
        assert len(srv.requests) == 5
        llm.chat_many(['good one', 'fixable one', 'hopeless one'], response_format=Todo)  # cached, repairs too
        assert len(srv.requests) == 7  # ... but a parse failure is asked again (2 requests)
        assert {b['messages'][0]['content'] for b in srv.requests[5:]} == {'hopeless one'}


def test_json_schema_rejected_falls_back_to_json_mode(tmp_path):
    def responder(body):
        if body.get('response_format', {}).get('type') == 'json_schema':
            return {'status': 400, 'error': 'json_schema not supported'}
        assert body['response_format'] == {'type': 'json_object'} and 'JSON schema' in body['messages'][0]['content']
        return '{"title": "a", "priority": 3}'

    schema = Todo.model_json_schema()
    with FakeOpenAIServer(responder) as srv:
        llm = make(srv, tmp_path)
        res = llm.chat_many(['x', 'y'], response_format=schema)
        assert [r.parsed for r in res] == [{'title': 'a', 'priority': 3}] * 2
        n = len(srv.requests)
        res = llm.chat_many(['z'], response_format=schema)  # remembered: straight to JSON mode
        assert res[0].parsed == {'title': 'a', 'priority': 3} and len(srv.requests) == n + 1


def test_works_inside_running_event_loop(fake_openai, tmp_path):
    llm = make(fake_openai, tmp_path)

    async def notebook_cell():  # Jupyter runs cells inside a loop
        sync = llm.chat_many(prompts(4))
        asy = await llm.achat_many(prompts(4, 'async'))
        return sync, asy

    sync, asy = asyncio.run(notebook_cell())
    assert [r.text for r in sync] == [f'echo: q {i}' for i in range(4)]
    assert [r.text for r in asy] == [f'echo: async {i}' for i in range(4)]


def test_env_vars_and_sdk_transport(fake_openai, tmp_path, monkeypatch):
    monkeypatch.setenv('OPENAI_BASE_URL', fake_openai.base_url)
    monkeypatch.setenv('OPENAI_API_KEY', KEY)
    llm = LLM('fake-model', cache_dir=tmp_path, progress=False)
    assert llm.base_url == fake_openai.base_url and llm.chat('hi').text == 'echo: hi'
    assert LLM(cache_dir=None).model == 'fake-model'  # a custom endpoint's served model
    sdk = LLM('fake-model', cache_dir=None, transport='sdk', progress=False, max_retries=1)
    assert sdk.chat_many(prompts(3)).texts == [f'echo: q {i}' for i in range(3)]


def test_estimate_and_summary(fake_openai, tmp_path):
    llm = make(fake_openai, tmp_path, model='gpt-4o-mini')
    est = llm.estimate(prompts(10), max_tokens=100)
    assert est.calls == 10 and est.tokens_out == 1000 and est.usd > 0
    res = llm.chat_many(prompts(3))
    s = res.summary
    assert s.calls == 3 and s.failed == 0 and s.tokens_in > 0 and s.usd > 0
    assert '<table' in llm.usage_summary()._repr_html_()


def test_batch_api(fake_openai, tmp_path):
    llm = make(fake_openai, tmp_path, model='gpt-4o-mini')
    llm.chat_many(prompts(2), max_tokens=16)  # two already cached
    n = len(fake_openai.requests)
    res = llm.batch_many(prompts(6), poll_interval=0.05, max_tokens=16)
    assert [r.text for r in res] == [f'echo: q {i}' for i in range(6)]
    assert len(fake_openai.requests) == n and len(fake_openai.batch_requests) == 4  # only the missing went to the batch
    assert [r.cached for r in res] == [True, True, False, False, False, False]
    from synthbench.llm.cost import cost_usd

    u = res[2].usage
    assert res[2].cost_usd > 0 and abs(res[2].cost_usd - 0.5 * cost_usd('gpt-4o-mini', u.prompt_tokens, u.completion_tokens)) < 1e-12
    again = llm.chat_many(prompts(6), max_tokens=16)  # batch answers are in the cache
    assert all(r.cached for r in again) and len(fake_openai.requests) == n


def test_batch_resumes_after_a_crash(fake_openai, tmp_path, monkeypatch):
    "A run that dies while waiting for its batch resumes that batch instead of paying for a new one."
    import synthbench.llm.batch as B

    llm = make(fake_openai, tmp_path, model='gpt-4o-mini')
    real = B._wait_and_collect

    async def dies(*a, **kw):
        raise RuntimeError('kernel died')

    monkeypatch.setattr(B, '_wait_and_collect', dies)
    with pytest.raises(RuntimeError):
        llm.batch_many(prompts(5), poll_interval=0.05)
    monkeypatch.setattr(B, '_wait_and_collect', real)
    res = make(fake_openai, tmp_path, model='gpt-4o-mini').batch_many(prompts(5), poll_interval=0.05)
    assert [r.text for r in res] == [f'echo: q {i}' for i in range(5)]
    assert len(fake_openai.batches) == 1 and len(fake_openai.batch_requests) == 5


KILL_SCRIPT = textwrap.dedent('''
    import sys
    from synthbench.llm.engine import LLM
    llm = LLM(model='fake-model', base_url=sys.argv[1], api_key='k', cache_dir=sys.argv[2], max_concurrency=4, progress=False)
    res = llm.chat_many([[{'role': 'user', 'content': f'p {i}'}] for i in range(int(sys.argv[3]))])
    print(sum(r.error is None for r in res))
''')


def test_kill9_resume_sends_only_missing(tmp_path):
    n = 60
    script = tmp_path / 'run.py'
    script.write_text(KILL_SCRIPT)
    answered = []  # (time, prompt) answered by the server

    def responder(body):
        answered.append((time.monotonic(), body['messages'][-1]['content']))
        return 'ok'

    with FakeOpenAIServer(responder, latency=0.05) as srv:
        p = subprocess.Popen([sys.executable, str(script), srv.base_url, str(tmp_path / 'cache'), str(n)])
        while len(answered) < 25 and p.poll() is None:
            time.sleep(0.01)
        t_kill = time.monotonic()
        p.kill()
        p.wait()
        first = len(srv.requests)
        assert 25 <= first < n
        con = sqlite3.connect(tmp_path / 'cache' / 'llm_cache.sqlite')
        stored = con.execute('select count(*) from responses').fetchone()[0]
        con.close()
        # everything answered more than a second before the kill was committed
        assert stored >= sum(1 for t, _ in answered if t < t_kill - 1.0)
        out = subprocess.run([sys.executable, str(script), srv.base_url, str(tmp_path / 'cache'), str(n)], capture_output=True, text=True)
        assert out.stdout.strip() == str(n), out.stderr
        resent = [b['messages'][-1]['content'] for b in srv.requests[first:]]
        assert len(resent) == n - stored  # the re-run sent only what was missing
        assert len(set(resent)) == len(resent)


def test_no_config_means_local(fake_openai, tmp_path, monkeypatch):
    "LLM() with no model/key/base_url uses the embedded local server (here stood in for by the fake)."
    import types

    for v in ('OPENAI_API_KEY', 'OPENAI_BASE_URL', 'AZURE_OPENAI_ENDPOINT'):
        monkeypatch.delenv(v, raising=False)
    fake_local = types.ModuleType('synthbench.llm.local')
    fake_local.local_server = lambda: types.SimpleNamespace(base_url=fake_openai.base_url, model='smollm2-135m-instruct')
    monkeypatch.setitem(sys.modules, 'synthbench.llm.local', fake_local)
    llm = LLM(cache_dir=tmp_path, budget_usd=0.01)  # local is free: a budget is fine
    assert llm.model == 'smollm2-135m-instruct' and llm.endpoint == 'local'
    assert llm.chat('hi', max_tokens=8).text == 'echo: hi' and llm.cost == 0
    assert LLM.local(cache_dir=tmp_path).chat('hi', max_tokens=8).cached  # same cache namespace across ports


def test_progress_bar(fake_openai, tmp_path, capsys):
    llm = make(fake_openai, tmp_path, progress=True)
    llm.chat_many(prompts(25), desc='bench')
    err = capsys.readouterr().err
    assert 'bench' in err and '25/25' in err and 'failed=0' in err and '$0.0000' in err


@pytest.mark.slow
def test_real_local_model(tmp_path):
    "Two short prompts to the embedded SmolLM2 through llama.cpp's server (path check, not quality)."
    pytest.importorskip('synthbench.llm.local')
    llm = LLM.local(cache_dir=tmp_path)
    res = llm.chat_many(['Name a fruit.', 'Say hello.'], max_tokens=16, temperature=0)
    assert all(r.error is None or r.error.startswith('truncated') for r in res) and all(r.text for r in res)
    assert all(r.cached for r in llm.chat_many(['Name a fruit.', 'Say hello.'], max_tokens=16, temperature=0))


# ---- issue 10: error kinds, the budget ledger, broken bodies, 429s, durable answers, faults


def test_failure_summary_and_kinds():
    assert failure_summary([ChatResult(text='ok')]) is None and failure_summary([]) is None
    rs = [
        ChatResult(text='a'),
        ChatResult(error='HTTP 503: down (after 6 attempts)', error_kind='server', status=503),
        ChatResult(error='HTTP 429: slow down, key ' + KEY + ' (after 6 attempts)', error_kind='rate_limit', status=429),
        ChatResult(error='HTTP 429: again\nand again ' + 'x' * 300, error_kind='rate_limit', status=429),
    ]
    fs = failure_summary(rs)
    assert fs['failed'] == 3 and fs['total'] == 4 and fs['kind'] == 'rate_limit' and fs['by_kind'] == {'server': 1, 'rate_limit': 2}
    assert fs['reason'].startswith('HTTP 429: slow down, key sk-...') and KEY not in fs['reason'] and len(fs['reason']) <= 200


def test_network_error_kind(tmp_path):
    llm = LLM(model='fake-model', base_url='http://127.0.0.1:9/v1', api_key=KEY, cache_dir=None, progress=False, max_retries=1)
    r = llm.chat('hi')
    assert r.error_kind == 'network' and r.status is None and r.attempts == 2


def test_budget_ledger_persists_across_runs(tmp_path):
    "budget_usd=0.002 run twice on one cache: the second run does not get a fresh $0.002."
    prices = {'pricey': (10.0, 10.0)}  # 20 tokens = $0.0002 per answer
    with FakeOpenAIServer(lambda b: {'content': 'ok', 'usage': {'prompt_tokens': 10, 'completion_tokens': 10}}) as srv:
        a = make(srv, tmp_path, model='pricey', prices=prices, budget_usd=0.002, max_concurrency=4)
        r1 = a.chat_many(prompts(30, 'first'), max_tokens=10)
        n1 = sum(r.ok for r in r1)
        assert 5 <= n1 <= 10 and a.spent_usd <= 0.002 + 1e-12
        b = make(srv, tmp_path, model='pricey', prices=prices, budget_usd=0.002, max_concurrency=4)  # a re-run (new session)
        assert abs(b.spent_usd - a.spent_usd) < 1e-12 and b.cost == 0
        r2 = b.chat_many(prompts(30, 'second'), max_tokens=10)
        assert b.spent_usd <= 0.002 + 1e-12 and b.cost <= 0.002 - a.cost + 1e-12
        assert sum(r.ok for r in r2) <= 10 - n1 + 1
        bad = [r for r in r2 if not r.ok]
        assert bad and all(r.error_kind == 'budget' and 'budget' in r.error and '0.002000' in r.error for r in bad)
        again = b.chat_many(prompts(30, 'first'), max_tokens=10)  # cached answers cost nothing new
        assert sum(r.cached for r in again) == n1
        other = make(srv, tmp_path, model='pricey', prices=prices, budget_usd=0.002, budget_scope='another project')
        assert other.spent_usd == 0 and other.chat('x', max_tokens=10).ok
        s = b.usage_summary()
        assert s.ledger_usd == b.spent_usd and 'ledger' in repr(s)


def test_budget_needs_an_exact_price(tmp_path):
    with pytest.raises(ValueError, match=r"gpt-4o-mini-realtime.*prices="):
        LLM(model='gpt-4o-mini-realtime', base_url='http://127.0.0.1:9/v1', api_key='x', budget_usd=1, cache_dir=None)
    assert LLM(model='ft:gpt-4o-mini:org::abc', base_url='http://127.0.0.1:9/v1', api_key='x', budget_usd=1, cache_dir=None).budget_usd == 1


def test_truncated_and_choiceless_200s_are_retried_not_answers(tmp_path):
    seen = {}

    def responder(body):
        c = body['messages'][-1]['content']
        k = seen[c] = seen.get(c, 0) + 1
        if k == 1 and c.startswith('cut'):
            return {'raw': '{"id": "x", "choices": [{"message": {"role": "assis'}
        if k == 1 and c.startswith('nochoice'):
            return {'raw': '{"id": "x", "object": "chat.completion"}'}
        return f'ok {c}'

    with FakeOpenAIServer(responder) as srv:
        llm = make(srv, tmp_path)
        res = llm.chat_many(['cut 1', 'nochoice 2', 'fine 3'])
        assert res.texts == ['ok cut 1', 'ok nochoice 2', 'ok fine 3'] and all(r.ok for r in res)
        assert res[0].attempts == 2 and res[1].attempts == 2 and llm.stats['retries'] == 2


def test_isolated_429s_do_not_slow_the_run_and_a_burst_recovers(tmp_path):
    n_seen = [0]

    def responder(body):
        n_seen[0] += 1
        if n_seen[0] <= 16:
            return {'status': 429, 'retry_after_ms': 100}  # a burst at the start
        return 'ok'

    with FakeOpenAIServer(responder, latency=0.01) as srv:
        llm = make(srv, tmp_path, max_concurrency=16)
        t0 = time.monotonic()
        res = llm.chat_many(prompts(400))
        dt = time.monotonic() - t0
        assert all(r.ok for r in res) and llm._gate.min_limit < 16
        assert llm._gate.limit == 16 and dt < 3.0  # slowed for what the server asked, then full speed


FAULT_KW = dict(faults={'429': 0.1, '500': 0.1, 'truncated': 0.1}, retry_after_ms=100)


def test_faults_small_run_no_errors_and_rerun_sends_nothing(tmp_path):
    with FakeOpenAIServer(latency=0.02, **FAULT_KW) as srv:
        llm = make(srv, tmp_path, max_concurrency=25, max_retries=8)
        t0 = time.monotonic()
        res = llm.chat_many(prompts(200))
        dt = time.monotonic() - t0
        assert failure_summary(res) is None, failure_summary(res)
        assert sum(srv.n_faults.values()) > 20 and dt < 10
        n = srv.n_requests
        again = make(srv, tmp_path, max_concurrency=25).chat_many(prompts(200))
        assert all(r.cached for r in again) and srv.n_requests == n


KILL_BIG = textwrap.dedent('''
    import sys
    from synthbench.llm.engine import LLM
    llm = LLM(model='fake-model', base_url=sys.argv[1], api_key='k', cache_dir=sys.argv[2], max_concurrency=16, progress=False)
    res = llm.chat_many([[{'role': 'user', 'content': f'p {i}'}] for i in range(int(sys.argv[3]))])
    print(sum(r.error is None for r in res))
''')


def test_kill9_loses_at_most_the_last_100ms(tmp_path):
    "kill -9 after ~300 of 1,000 answers: the re-run sends only what was not answered (+ the last ~100 ms)."
    n = 1000
    script = tmp_path / 'run.py'
    script.write_text(KILL_BIG)
    env = {
        **os.environ,
        'PYTHONPATH': os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.environ.get('PYTHONPATH', '')]),
    }
    with FakeOpenAIServer(latency=0.02) as srv:
        p = subprocess.Popen([sys.executable, str(script), srv.base_url, str(tmp_path / 'cache'), str(n)], env=env)
        kill_at = 300 + random.Random().randrange(120)  # anywhere in the writer's commit cycle
        while srv.n_answered < kill_at and p.poll() is None:
            time.sleep(0.002)
        t_kill = time.monotonic()
        p.kill()
        p.wait()
        answered = srv.n_answered
        last_100ms = sum(1 for t in srv.answer_times if t > t_kill - 0.1)
        assert 300 <= answered < n
        before = srv.n_requests
        out = subprocess.run(
            [sys.executable, str(script), srv.base_url, str(tmp_path / 'cache'), str(n)], capture_output=True, text=True, env=env
        )
        assert out.stdout.strip() == str(n), out.stderr
        resent = srv.n_requests - before
        print(
            f"kill -9 after {answered} answers: re-run sent {resent} (unanswered {n - answered}, answered in the last 100 ms {last_100ms})"
        )
        assert resent <= n - answered + last_100ms + 5, (resent, n - answered, last_100ms)
