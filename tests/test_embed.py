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
            def log_message(self, *a): pass
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
                outer.requests.append(body); outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path != '/v1/embeddings' or body.get('encoding_format') != 'float':
                    self.send_response(400); self.end_headers(); return
                inp = body['input'] if isinstance(body['input'], list) else [body['input']]
                data = [{'object': 'embedding', 'index': i, 'embedding': fake_vector(t)} for i, t in enumerate(inp)]
                out = json.dumps({'object': 'list', 'data': data[::-1], 'model': body['model'],  # shuffled order: client must sort by index
                                  'usage': {'prompt_tokens': len(inp), 'total_tokens': len(inp)}}).encode()
                self.send_response(200); self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(out))); self.end_headers(); self.wfile.write(out)
        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), H)
        self.base_url = f'http://127.0.0.1:{self.httpd.server_address[1]}/v1'
    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start(); return self
    def __exit__(self, *a): self.httpd.shutdown(); self.httpd.server_close()


@pytest.fixture
def emb_server():
    with EmbeddingsServer() as s: yield s


def test_openai_embedder_batches_normalises_and_caches(emb_server, tmp_path):
    texts = [f'text number {i}' for i in range(7)] + ['text number 0']  # one repeat
    emb = OpenAIEmbedder('fake-emb', base_url=emb_server.base_url, api_key='sk-test-SECRET', max_batch=3)
    X = embed_texts(texts, model=emb, cache_dir=tmp_path, progress=False)
    assert X.shape == (8, DIM) and X.dtype == np.float32
    want = np.array([fake_vector(t) for t in texts], dtype=np.float32)
    np.testing.assert_allclose(X, want / np.linalg.norm(want, axis=1, keepdims=True), rtol=1e-5)
    assert [len(r['input']) for r in emb_server.requests] == [3, 3, 1]  # 7 distinct texts, batches of 3
    assert emb_server.headers[0]['authorization'] == 'Bearer sk-test-SECRET'
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
        if f.is_file(): assert b'sk-test-SECRET' not in f.read_bytes()
    assert 'SECRET' not in repr(emb)


def test_get_embedder_openai_by_name_and_env(emb_server, tmp_path, monkeypatch):
    monkeypatch.setenv('OPENAI_API_KEY', 'sk-env')
    e = get_embedder('openai:fake-emb', base_url=emb_server.base_url)
    assert isinstance(e, OpenAIEmbedder) and e.name.endswith(':fake-emb')
    X = embed_texts(['a', 'b'], model='openai:fake-emb', base_url=emb_server.base_url, cache_dir=tmp_path, progress=False)
    assert X.shape == (2, DIM)
    assert emb_server.headers[-1]['authorization'] == 'Bearer sk-env'


def test_openai_embedder_needs_key_or_url(monkeypatch):
    monkeypatch.delenv('OPENAI_API_KEY', raising=False); monkeypatch.delenv('OPENAI_BASE_URL', raising=False)
    with pytest.raises(ValueError, match='no API key'): OpenAIEmbedder('x')


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
    df = make_table([{'messages': [{'role': 'user', 'content': 'Where is my parcel?'}, {'role': 'assistant', 'content': 'It ships Monday.'}]},
                     {'text': 'Where is my parcel?', 'label': 'shipping'}])
    X = embed_table(df, cache_dir=tmp_path, progress=False)
    Xu = embed_table(df, roles=['user'], cache_dir=tmp_path, progress=False)
    assert X.shape == Xu.shape == (2, 384)
    assert Xu[0] @ Xu[1] > X[0] @ X[1]


def test_offline_and_lazy_import(tmp_path):
    "`import synthbench.llm.embed` loads no torch; embedding works with HF_HUB_OFFLINE unset (it is set before loading)."
    code = ("import sys, os; import synthbench.llm.embed as m; assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules;"
            f"X = m.embed_texts(['hello'], cache_dir={str(tmp_path)!r}, progress=False); print(X.shape, os.environ['HF_HUB_OFFLINE'])")
    env = {k: v for k, v in os.environ.items() if k not in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE')}
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == '(1, 384) 1'
