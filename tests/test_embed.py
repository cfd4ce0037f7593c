"Embeddings: local model offline, disk cache, and the OpenAI-compatible embedder against a loopback fixture."

import hashlib, json, os, subprocess, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import numpy as np
import pandas as pd
import pytest
from synthbench.core import make_table
from synthbench.llm.embed import EmbeddingCache, OpenAIEmbedder, embed_table, embed_texts, get_embedder

DIM = 8


def fake_vector(text: str) -> list[float]:
    "Deterministic, unnormalised vector for `text` (so the test can check normalisation)."
    h = hashlib.sha256(text.encode()).digest()
    return [float(b) - 100.0 for b in h[:DIM]]


class EmbeddingsServer:
    "Loopback OpenAI-compatible `/v1/embeddings` server returning `fake_vector`s (fixture, not product)."

    def __init__(self):
        self.requests, self.headers = [], []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
                outer.requests.append(body)
                outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path != '/v1/embeddings' or body.get('encoding_format') != 'float':
                    self.send_response(400)
                    self.end_headers()
                    return
                inp = body['input'] if isinstance(body['input'], list) else [body['input']]
                data = [{'object': 'embedding', 'index': i, 'embedding': fake_vector(t)} for i, t in enumerate(inp)]
                out = json.dumps(
                    {
                        'object': 'list',
                        'data': data[::-1],
                        'model': body['model'],  # shuffled order: client must sort by index
                        'usage': {'prompt_tokens': len(inp), 'total_tokens': len(inp)},
                    }
                ).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), H)
        self.base_url = f'http://127.0.0.1:{self.httpd.server_address[1]}/v1'

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *a):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def emb_server():
    with EmbeddingsServer() as s:
        yield s


def test_openai_embedder_batches_normalises_and_caches(emb_server, tmp_path, monkeypatch):
    monkeypatch.setenv('SYNTHBENCH_CACHE_DIR', str(tmp_path / 'home_cache'))  # the engine's ledger too: checked for the key below
    texts = [f'text number {i}' for i in range(7)] + ['text number 0']  # one repeat
    emb = OpenAIEmbedder('fake-emb', base_url=emb_server.base_url, api_key='test-SECRET-placeholder', max_batch=3)
    X = embed_texts(texts, model=emb, cache_dir=tmp_path, progress=False)
    assert X.shape == (8, DIM) and X.dtype == np.float32
    want = np.array([fake_vector(t) for t in texts], dtype=np.float32)
    np.testing.assert_allclose(X, want / np.linalg.norm(want, axis=1, keepdims=True), rtol=1e-5)
    assert sorted(len(r['input']) for r in emb_server.requests) == [1, 3, 3]  # 7 distinct texts, batches of 3 (sent concurrently)
    assert emb_server.headers[0]['authorization'] == 'Bearer test-SECRET-placeholder'
    # second call: everything from the cache, no request
    n = len(emb_server.requests)
    X2 = embed_texts(texts[::-1], model=emb, cache_dir=tmp_path, progress=False)
    assert len(emb_server.requests) == n and emb.n_computed == 7
    np.testing.assert_allclose(X2, X[::-1])
    # only the new text is sent
    embed_texts(texts + ['brand new'], model=emb, cache_dir=tmp_path, progress=False)
    assert emb_server.requests[-1]['input'] == ['brand new']
    # the key is never written to disk nor shown
    for f in tmp_path.rglob('*'):
        if f.is_file():
            assert b'test-SECRET-placeholder' not in f.read_bytes()
    assert 'SECRET' not in repr(emb)


def test_get_embedder_openai_by_name_and_env(emb_server, tmp_path, monkeypatch):
    monkeypatch.setenv('OPENAI_API_KEY', 'sk-env')
    monkeypatch.setenv('SYNTHBENCH_CACHE_DIR', str(tmp_path / 'home_cache'))
    e = get_embedder('openai:fake-emb', base_url=emb_server.base_url)
    assert isinstance(e, OpenAIEmbedder) and e.name.endswith(':fake-emb')
    X = embed_texts(['a', 'b'], model='openai:fake-emb', base_url=emb_server.base_url, cache_dir=tmp_path, progress=False)
    assert X.shape == (2, DIM)
    assert emb_server.headers[-1]['authorization'] == 'Bearer sk-env'


def test_openai_embedder_needs_key_or_url(monkeypatch):
    monkeypatch.delenv('OPENAI_API_KEY', raising=False)
    monkeypatch.delenv('OPENAI_BASE_URL', raising=False)
    with pytest.raises(ValueError, match='no API key'):
        OpenAIEmbedder('x')


def test_local_cache_hit_computes_nothing(tmp_path):
    texts = ['The cat sat on the mat.', 'A dog barked twice.', 'The cat sat on the mat.']
    e = get_embedder()
    n0 = e.n_computed
    X = embed_texts(texts, cache_dir=tmp_path, progress=False)
    assert e.n_computed - n0 == 2  # repeats computed once
    assert X.shape == (3, 384) and np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    assert EmbeddingCache(tmp_path).count() == 2
    X2 = embed_texts(texts, cache_dir=tmp_path, progress=False)
    assert e.n_computed - n0 == 2 and np.array_equal(X, X2)
    # no cache: computes again
    embed_texts(texts[:1], cache_dir=False, progress=False)
    assert e.n_computed - n0 == 3


def test_embed_table_roles(tmp_path):
    df = make_table(
        [
            {'messages': [{'role': 'user', 'content': 'Where is my parcel?'}, {'role': 'assistant', 'content': 'It ships Monday.'}]},
            {'text': 'Where is my parcel?', 'label': 'shipping'},
        ]
    )
    X = embed_table(df, cache_dir=tmp_path, progress=False)
    Xu = embed_table(df, roles=['user'], cache_dir=tmp_path, progress=False)
    assert X.shape == Xu.shape == (2, 384)
    assert Xu[0] @ Xu[1] > X[0] @ X[1]


def test_offline_and_lazy_import(tmp_path):
    "`import synthbench.llm.embed` loads no torch; embedding works with HF_HUB_OFFLINE unset (it is set before loading)."
    code = (
        "import sys, os; import synthbench.llm.embed as m; assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules;"
        f"X = m.embed_texts(['hello'], cache_dir={str(tmp_path)!r}, progress=False); print(X.shape, os.environ['HF_HUB_OFFLINE'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE')}
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == '(1, 384) 1'


# ---- paid embeddings through the LLM engine: priced, budgeted, retried, classified (against tests/fake_openai.py)
from fake_openai import FakeOpenAIServer, embedding_tokens, fake_embedding
from synthbench.llm.cost import price_for
from synthbench.llm.engine import LLM
from synthbench.run.stage import StageError

KEY = 'sk-' + 'test-EMBEDKEY-0123456789abcd'  # a fake key, split so secret scanners don't flag it
SMALL = 'text-embedding-3-small'


@pytest.fixture
def srv(tmp_path, monkeypatch):
    monkeypatch.setenv('SYNTHBENCH_CACHE_DIR', str(tmp_path / 'home_cache'))  # nothing lands in ~/.cache
    with FakeOpenAIServer() as s:
        yield s


def paid(srv, tmp_path, **kw):
    kw = {'base_url': srv.base_url, 'api_key': KEY, 'cache_dir': tmp_path / 'llm', 'max_batch': 4, **kw}
    return OpenAIEmbedder(kw.pop('model', SMALL), **kw)


def texts(n, tag='doc'):
    return [f'{tag} number {i} about refunds' for i in range(n)]


def test_spend_booked_matches_usage_times_price_and_cache_books_nothing(srv, tmp_path):
    emb = paid(srv, tmp_path, budget_usd=1.0)
    X = embed_texts(texts(10), model=emb, cache_dir=tmp_path / 'emb', progress=False)
    assert X.shape == (10, 8) and srv.n_embed_requests == 3  # 10 texts, 4 per request
    want = np.array([fake_embedding(t) for t in texts(10)], np.float32)
    np.testing.assert_allclose(X, want / np.linalg.norm(want, axis=1, keepdims=True), rtol=1e-5)
    billed = sum(embedding_tokens(t) for t in texts(10))
    assert srv.embed_tokens == billed
    usd = billed * price_for(SMALL)[0] / 1e6
    assert emb.usd == pytest.approx(usd) and emb.llm.spent_usd == pytest.approx(usd) and emb.llm.ledger.reserved == 0
    assert emb.llm.stats['tokens_in'] == billed
    # a re-run (same client, then a new session on the same caches): all vectors cached, no request, nothing booked
    embed_texts(texts(10), model=emb, cache_dir=tmp_path / 'emb', progress=False)
    emb2 = paid(srv, tmp_path, budget_usd=1.0)
    embed_texts(texts(10)[::-1], model=emb2, cache_dir=tmp_path / 'emb', progress=False)
    assert srv.n_embed_requests == 3 and emb2.usd == 0 and emb2.llm.spent_usd == pytest.approx(usd)
    assert all(a == 'Bearer ' + KEY for a in srv.embed_auth)
    for f in tmp_path.rglob('*'):  # the key is never written anywhere
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f


def test_one_budget_covers_chat_and_embeddings(srv, tmp_path):
    llm = LLM(model='gpt-4o-mini', base_url=srv.base_url, api_key=KEY, cache_dir=tmp_path / 'llm', budget_usd=0.01, progress=False)
    chat_usd = llm.chat_many(['hello there', 'how are you'], max_tokens=20).summary.usd
    assert chat_usd > 0
    emb = OpenAIEmbedder(SMALL, llm=llm, max_batch=4)
    embed_texts(texts(6), model=emb, cache_dir=tmp_path / 'emb', progress=False)
    assert srv.n_embed_requests == 2 and emb.base_url == llm.base_url
    emb_usd = sum(embedding_tokens(t) for t in texts(6)) * price_for(SMALL)[0] / 1e6
    assert llm.spent_usd == pytest.approx(chat_usd + emb_usd)
    # an embedding request that does not fit what is left of the run's budget is refused before it is sent
    llm.budget_usd = llm.spent_usd + 1e-9
    with pytest.raises(StageError) as e:
        embed_texts(texts(3, 'new'), model=emb, cache_dir=tmp_path / 'emb', progress=False)
    assert e.value.kind == 'budget' and srv.n_embed_requests == 2 and 'budget exceeded' in e.value.reason


def test_budget_smaller_than_estimate_refused_before_sending(srv, tmp_path):
    emb = paid(srv, tmp_path, budget_usd=1e-7)
    with pytest.raises(StageError) as e:
        embed_texts(texts(10), model=emb, cache_dir=tmp_path / 'emb', progress=False)
    assert srv.n_embed_requests == 0
    assert e.value.kind == 'budget' and '\n' not in e.value.reason and 'budget_usd=$0.000000' in e.value.reason
    assert emb.llm.spent_usd == 0 and emb.n_computed == 0
    # a budget without a price for the model is refused at once, like chat
    with pytest.raises(ValueError, match='no price is known'):
        paid(srv, tmp_path, model='my-embedder', budget_usd=1.0)
    free = paid(srv, tmp_path, model='my-embedder')  # no budget: unknown price counts 0, like chat
    assert free.encode(['a b']).shape == (1, 8) and free.usd == 0


def test_401_fails_with_kind_auth_and_one_line(srv, tmp_path):
    srv.embed_statuses = [401] * 5
    emb = paid(srv, tmp_path, max_batch=100)
    with pytest.raises(StageError) as e:
        embed_texts(texts(5), model=emb, cache_dir=tmp_path / 'emb', progress=False)
    assert e.value.kind == 'auth' and srv.n_embed_requests == 1  # fatal: not retried
    assert '\n' not in e.value.reason and 'HTTP 401' in e.value.reason and KEY not in str(e.value)


def test_429_retried_then_rate_limit_and_500_server(srv, tmp_path):
    srv.embed_statuses = [429, 429]
    emb = paid(srv, tmp_path, max_batch=100)
    X = embed_texts(texts(5), model=emb, cache_dir=tmp_path / 'emb', progress=False)
    assert X.shape == (5, 8) and srv.n_embed_requests == 3 and emb.llm.stats['retries'] == 2
    srv.embed_statuses = [429] * 3
    emb = paid(srv, tmp_path, max_batch=100, max_retries=2)
    with pytest.raises(StageError) as e:
        emb.encode(['x y z'])
    assert e.value.kind == 'rate_limit' and srv.n_embed_requests == 6 and 'after 3 attempts' in e.value.reason
    srv.embed_statuses = [500] * 3
    with pytest.raises(StageError) as e:
        emb.encode(['x y z'])
    assert e.value.kind == 'server' and srv.n_embed_requests == 9


def test_rpm_limit_and_endpoint_rule(srv, tmp_path, monkeypatch):
    import time

    emb = paid(srv, tmp_path, max_batch=1, rpm=120)  # 2 per second, bursts of 2
    t = time.monotonic()
    emb.encode(['a', 'b', 'c', 'd'])
    assert srv.n_embed_requests == 4 and time.monotonic() - t >= 0.8  # timing: loose bound (shared CPUs)
    llm = LLM(model='gpt-4o-mini', base_url=srv.base_url, api_key=KEY, cache_dir=None, progress=False)
    with pytest.raises(ValueError, match='requests only go to the endpoint you name'):
        OpenAIEmbedder(SMALL, llm=llm, base_url='https://api.openai.com/v1')
    monkeypatch.setenv('MY_EMBED_KEY', 'sk-' + 'from-env-0123456789')
    e = paid(srv, tmp_path, api_key=None, api_key_env='MY_EMBED_KEY')
    e.encode(['q'])
    assert srv.embed_auth[-1] == 'Bearer sk-' + 'from-env-0123456789' and 'from-env' not in repr(e)
    monkeypatch.delenv('MY_EMBED_KEY')
    with pytest.raises(ValueError, match=r'api_key_env names \$MY_EMBED_KEY'):
        paid(srv, tmp_path, api_key=None, api_key_env='MY_EMBED_KEY')


def test_sdk_transport_sends_embeddings_too(srv, tmp_path):
    emb = paid(srv, tmp_path, budget_usd=1.0)
    emb.llm.transport = 'sdk'
    X = emb.encode(['a b c', 'd'], batch_size=1)
    assert X.shape == (2, 8) and srv.n_embed_requests == 2 and emb.llm.spent_usd == pytest.approx(4 * price_for(SMALL)[0] / 1e6)
