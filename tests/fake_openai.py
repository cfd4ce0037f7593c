"""A fake OpenAI-compatible server for tests and benchmarks (loopback only, bounded, stops itself).

    with FakeOpenAIServer(responder=fn, latency=0.0) as srv:
        llm = LLM(model='fake-model', base_url=srv.base_url, api_key='test', cache_dir=tmp_path)
        ...
        srv.requests      # JSON bodies received at /v1/chat/completions (in arrival order)

`responder(body: dict) -> str | dict` returns the assistant content, or a dict shaping the answer:

    content        assistant text (default: 'echo: <last user message>')
    finish_reason  'stop' (default), 'length', 'content_filter', ...
    refusal        a refusal string (message.refusal)
    usage          dict with prompt_tokens / completion_tokens (default: word counts)
    status         HTTP status, e.g. 429, 500, 400 (body is an OpenAI-style error)
    error          error message for a non-200 status
    retry_after    seconds, sent as `Retry-After`;  retry_after_ms: sent as `retry-after-ms`
    headers        extra response headers (e.g. x-ratelimit-*)
    latency        seconds to wait before answering (overrides the server's `latency`)
    hang           seconds to wait and then drop the connection without answering (a hung server)
    drop           True: close the connection without an answer
    raw            a raw response body (str) sent as is with status 200 (malformed JSON)

Injected faults (any responder, also in process mode): `faults={'429': 0.1, '500': 0.1, 'truncated': 0.1}` answers
that share of chat requests (drawn at random, `fault_seed`) with a 429 carrying `retry-after-ms: retry_after_ms` and
`Retry-After` (whole seconds, rounded up, as OpenAI sends both), a 500, or a 200 whose JSON body is cut in half.
`n_answered` counts well-formed 200 answers (and `answer_times` their monotonic times, in-process only).

Embeddings: /v1/embeddings answers deterministic vectors (`fake_embedding`, `embed_dim` long or the request's `dimensions`)
in shuffled order (clients must sort by `index`), with `usage.prompt_tokens` = words of each input (at least 1 each).
`embed_statuses = [429, 429]` answers the next embeddings requests with those statuses first (429s carry `retry-after-ms:
embed_retry_after_ms`, 401s an authentication error); `embed_requests` / `n_embed_requests` / `embed_tokens` count what came
in and what was billed (200 answers only).

Besides chat completions it serves /v1/models, /v1/files (upload, retrieve, content) and /v1/batches
(create, retrieve, cancel, list) so the OpenAI Batch API path can be tested: a batch completes
`batch_delay` seconds after creation, each line answered by the same `responder`.

Process mode (for benchmarks, so client and server don't share one event loop):
    with FakeOpenAIServer(latency=0.5, process=True) as srv: ...   # default echo responder only
or  python tests/fake_openai.py --latency 0.5 [--faults 429=0.1,500=0.1,truncated=0.1 --retry-after-ms 200]
    (prints the base URL on stdout, stops after --lifetime s)
"""

from __future__ import annotations
import asyncio, json, math, os, random, subprocess, sys, threading, time, uuid

__all__ = ['FakeOpenAIServer', 'echo_responder', 'fake_embedding', 'embedding_tokens']

MAX_BODY = 32 * 1024 * 1024  # bytes per request
MAX_HANG = 60.0  # a hang never lasts longer than this


def echo_responder(body: dict) -> str:
    "Answer 'echo: <last user message>'."
    msgs = body.get('messages') or []
    last = next((m.get('content') for m in reversed(msgs) if m.get('role') == 'user'), '')
    if isinstance(last, list):
        last = ' '.join(p.get('text', '') for p in last if isinstance(p, dict))
    return f'echo: {last}'


def fake_embedding(text: str, dim: int = 8) -> list[float]:
    "Deterministic, unnormalised vector for `text`."
    import hashlib

    h = hashlib.sha256(text.encode()).digest()
    return [float(h[i % len(h)]) - 100.0 + i // len(h) for i in range(dim)]


def embedding_tokens(text: str) -> int:
    "What the fake bills for one embeddings input: its words, at least 1."
    return max(1, len(str(text).split()))


def _words(x) -> int:
    return len(str(x).split()) if x else 0


def _prompt_tokens(body: dict) -> int:
    return sum(_words(m.get('content')) + 4 for m in body.get('messages') or []) + 3


def _completion(body: dict, spec, n_created: int) -> dict:
    "An OpenAI chat.completion object for `body` shaped by the responder's answer `spec`."
    if isinstance(spec, str) or spec is None:
        spec = {'content': spec}
    content = spec.get('content')
    msg = {'role': 'assistant', 'content': content, 'refusal': spec.get('refusal')}
    usage = spec.get('usage') or {'prompt_tokens': _prompt_tokens(body), 'completion_tokens': _words(content)}
    usage = {**usage, 'total_tokens': usage.get('prompt_tokens', 0) + usage.get('completion_tokens', 0)}
    return {
        'id': f'chatcmpl-{n_created}',
        'object': 'chat.completion',
        'created': int(time.time()),
        'model': body.get('model') or 'fake-model',
        'choices': [{'index': 0, 'message': msg, 'logprobs': None, 'finish_reason': spec.get('finish_reason', 'stop')}],
        'usage': usage,
    }


def _error_body(status: int, message: str | None) -> dict:
    kind = {400: 'invalid_request_error', 401: 'authentication_error', 404: 'not_found_error', 429: 'rate_limit_exceeded'}.get(
        status, 'server_error'
    )
    return {'error': {'message': message or f'fake error {status}', 'type': kind, 'param': None, 'code': kind}}


class FakeOpenAIServer:
    "A loopback OpenAI-compatible server in a background thread (or a child process with `process=True`)."

    def __init__(
        self,
        responder=None,  # body -> str | dict (see module doc); default: echo
        latency: float = 0.0,  # seconds before each chat answer
        ratelimit_headers: dict | bool | None = None,  # True: fixed x-ratelimit-* headers; dict: these headers
        batch_delay: float = 0.2,  # seconds until a created batch is 'completed'
        lifetime: float = 600.0,  # the server stops itself after this many seconds
        record: bool = True,  # keep received bodies in `.requests`
        process: bool = False,  # run in a child process (echo responder only; for benchmarks)
        port: int = 0,  # 0: a free port
        faults: dict | None = None,  # share of chat requests answered with a fault: {'429': p, '500': p, 'truncated': p}
        retry_after_ms: int = 200,  # what an injected 429 asks the client to wait
        fault_seed: int = 0,
    ):
        if process and responder is not None:
            raise ValueError('process=True supports only the default echo responder')
        bad = set(faults or {}) - {'429', '500', 'truncated'}
        if bad:
            raise ValueError(f'unknown fault kinds {sorted(bad)}; use 429, 500, truncated')
        self.faults, self.retry_after_ms, self._rng = dict(faults or {}), retry_after_ms, random.Random(fault_seed)
        self.n_answered = 0
        self.n_faults = {k: 0 for k in self.faults}
        self.answer_times: list[float] = []
        self.responder, self.latency, self.batch_delay, self.lifetime = responder or echo_responder, latency, batch_delay, lifetime
        if ratelimit_headers is True:
            ratelimit_headers = {
                'x-ratelimit-limit-requests': '10000',
                'x-ratelimit-remaining-requests': '9999',
                'x-ratelimit-reset-requests': '6ms',
                'x-ratelimit-limit-tokens': '2000000',
                'x-ratelimit-remaining-tokens': '1999000',
                'x-ratelimit-reset-tokens': '30ms',
            }
        self.ratelimit_headers = dict(ratelimit_headers or {})
        self.record, self.process, self.port = record, process, port
        self.requests: list[dict] = []  # chat completion bodies, in arrival order
        self.batch_requests: list[dict] = []  # bodies answered through the Batch API
        self.n_requests = 0  # chat completion requests received (also when record=False)
        self.in_flight = self.max_in_flight = 0  # chat requests being answered now / at most at once
        self.embed_requests: list[dict] = []  # embeddings bodies, in arrival order
        self.embed_auth: list = []  # their Authorization headers
        self.n_embed_requests = 0  # embeddings requests received
        self.embed_tokens = 0  # input tokens billed in 200 embeddings answers
        self.embed_statuses: list[int] = []  # statuses to answer the next embeddings requests with (first in, first out)
        self.embed_retry_after_ms = 20  # what an embeddings 429 asks the client to wait
        self.embed_dim = 8
        self.files: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._loop = self._thread = self._proc = self._runner = None
        self.base_url = None

    # ---- lifecycle
    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self) -> 'FakeOpenAIServer':
        "Start serving; sets `base_url`."
        if self.process:
            return self._start_process()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve_thread, args=(ready,), daemon=True, name='fake-openai')
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError('fake OpenAI server did not start')
        return self

    def _serve_thread(self, ready):
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(self._start_site())
        ready.set()
        self._stop_handle = loop.call_later(self.lifetime, loop.stop)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(self._runner.cleanup())
            except Exception:
                pass
            loop.close()

    async def _start_site(self):
        from aiohttp import web

        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post('/v1/chat/completions', self._chat)
        app.router.add_get('/v1/models', self._models)
        app.router.add_post('/v1/embeddings', self._embeddings)
        app.router.add_post('/v1/files', self._file_create)
        app.router.add_get('/v1/files/{fid}', self._file_get)
        app.router.add_get('/v1/files/{fid}/content', self._file_content)
        app.router.add_post('/v1/batches', self._batch_create)
        app.router.add_get('/v1/batches', self._batch_list)
        app.router.add_get('/v1/batches/{bid}', self._batch_get)
        app.router.add_post('/v1/batches/{bid}/cancel', self._batch_cancel)
        app.router.add_get('/__stats', self._stats)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, '127.0.0.1', self.port, backlog=4096, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.base_url = f'http://127.0.0.1:{self.port}/v1'

    def _start_process(self):
        args = [
            sys.executable,
            os.path.abspath(__file__),
            '--latency',
            str(self.latency),
            '--lifetime',
            str(self.lifetime),
            '--port',
            str(self.port),
            '--parent',
            str(os.getpid()),
        ]
        if not self.record:
            args.append('--no-record')
        if self.faults:
            args += ['--faults', ','.join(f'{k}={v}' for k, v in self.faults.items()), '--retry-after-ms', str(self.retry_after_ms)]
        self._proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self._proc.stdout.readline().strip()
        if not line.startswith('http://127.0.0.1:'):
            self._proc.kill()
            raise RuntimeError(f'fake OpenAI server process did not start: {line!r}')
        self.base_url = line
        self.port = int(line.rsplit(':', 1)[1].split('/')[0])
        return self

    def stop(self):
        "Stop serving (idempotent)."
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    def stats(self) -> dict:
        "Request counters (works in process mode too)."
        if self._proc is None:
            return self._stats_dict()
        import urllib.request

        with urllib.request.urlopen(self.base_url.replace('/v1', '/__stats'), timeout=5) as r:
            return json.loads(r.read())

    def reset(self):
        "Forget recorded requests."
        with self._lock:
            self.requests.clear()
            self.batch_requests.clear()
            self.n_requests = self.max_in_flight = self.n_answered = 0
            self.answer_times.clear()
            self.n_faults = {k: 0 for k in self.faults}

    def _stats_dict(self) -> dict:
        return {
            'n_requests': self.n_requests,
            'n_batches': len(self.batches),
            'max_in_flight': self.max_in_flight,
            'n_answered': self.n_answered,
            'n_faults': dict(self.n_faults),
        }

    def _fault(self):
        "An injected fault kind for this request, or None."
        x = self._rng.random()
        for k, p in self.faults.items():
            if x < p:
                self.n_faults[k] += 1
                return k
            x -= p
        return None

    def _fault_response(self, kind, body):
        from aiohttp import web

        if kind == '429':
            hdr = {'retry-after-ms': str(self.retry_after_ms), 'Retry-After': str(max(1, math.ceil(self.retry_after_ms / 1000)))}
            return web.json_response(_error_body(429, 'Rate limit reached (injected fault)'), status=429, headers=hdr)
        if kind == '500':
            return web.json_response(_error_body(500, 'The server had an error (injected fault)'), status=500)
        text = json.dumps(_completion(body, echo_responder(body), self.n_requests))
        return web.Response(text=text[: len(text) // 2], status=200, content_type='application/json')

    def _answered(self, response):
        self.n_answered += 1
        if self.record:
            self.answer_times.append(time.monotonic())
        return response

    # ---- chat completions
    async def _chat(self, request):
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._chat_answer(request)
        finally:
            self.in_flight -= 1

    async def _chat_answer(self, request):
        from aiohttp import web

        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return web.json_response(_error_body(400, 'request body is not JSON'), status=400)
        self.n_requests += 1
        if self.record:
            with self._lock:
                self.requests.append(body)
        fault = self._fault() if self.faults else None
        if fault is not None:
            if self.latency:
                await asyncio.sleep(self.latency)
            return self._fault_response(fault, body)
        if self.responder is echo_responder and not self.ratelimit_headers:  # fast path for benchmarks
            if self.latency:
                await asyncio.sleep(self.latency)
            return self._answered(
                web.Response(body=json.dumps(_completion(body, echo_responder(body), self.n_requests)), content_type='application/json')
            )
        try:
            spec = self.responder(body)
        except Exception as e:
            spec = {'status': 500, 'error': f'responder raised {type(e).__name__}: {e}'}
        if not isinstance(spec, dict):
            spec = {'content': spec}
        if spec.get('hang'):
            await asyncio.sleep(min(float(spec['hang']), MAX_HANG))
            request.transport.close()
            return web.Response(status=500)
        lat = spec.get('latency', self.latency)
        if lat:
            await asyncio.sleep(lat)
        if spec.get('drop'):
            request.transport.close()
            return web.Response(status=500)
        headers = {**self.ratelimit_headers, **(spec.get('headers') or {})}
        if 'retry_after' in spec:
            headers['Retry-After'] = str(spec['retry_after'])
        if 'retry_after_ms' in spec:
            headers['retry-after-ms'] = str(spec['retry_after_ms'])
        status = int(spec.get('status', 200))
        if 'raw' in spec:
            return web.Response(text=spec['raw'], status=status, content_type='application/json', headers=headers)
        if status != 200:
            return web.json_response(_error_body(status, spec.get('error')), status=status, headers=headers)
        return self._answered(web.json_response(_completion(body, spec, self.n_requests), headers=headers))

    async def _embeddings(self, request):
        from aiohttp import web

        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response(_error_body(400, 'request body is not JSON'), status=400)
        with self._lock:
            self.n_embed_requests += 1
            if self.record:
                self.embed_requests.append(body)
                self.embed_auth.append(request.headers.get('Authorization'))
            status = self.embed_statuses.pop(0) if self.embed_statuses else 200
        if status != 200:
            hdr = {'retry-after-ms': str(self.embed_retry_after_ms)} if status == 429 else {}
            msg = {401: 'Incorrect API key provided.', 429: 'Rate limit reached for embeddings.'}.get(status)
            return web.json_response(_error_body(status, msg), status=status, headers=hdr)
        inp = body.get('input')
        inp = inp if isinstance(inp, list) else [inp]
        if not body.get('model') or not all(isinstance(t, str) and t for t in inp):
            return web.json_response(_error_body(400, "'input' must be non-empty strings and 'model' given"), status=400)
        dim = int(body.get('dimensions') or self.embed_dim)
        data = [{'object': 'embedding', 'index': i, 'embedding': fake_embedding(t, dim)} for i, t in enumerate(inp)]
        n = sum(embedding_tokens(t) for t in inp)
        with self._lock:
            self.embed_tokens += n
        return web.json_response(
            {'object': 'list', 'data': data[::-1], 'model': body['model'], 'usage': {'prompt_tokens': n, 'total_tokens': n}}
        )

    async def _models(self, request):
        from aiohttp import web

        return web.json_response({'object': 'list', 'data': [{'id': 'fake-model', 'object': 'model', 'created': 0, 'owned_by': 'fake'}]})

    async def _stats(self, request):
        from aiohttp import web

        return web.json_response(self._stats_dict())

    # ---- files
    def _file_obj(self, fid):
        f = self.files[fid]
        return {
            'id': fid,
            'object': 'file',
            'bytes': len(f['data']),
            'created_at': f['created_at'],
            'filename': f['filename'],
            'purpose': f['purpose'],
            'status': 'processed',
        }

    def _add_file(self, data: bytes, filename: str, purpose: str) -> str:
        fid = f'file-{uuid.uuid4().hex[:24]}'
        self.files[fid] = {'data': data, 'filename': filename, 'purpose': purpose, 'created_at': int(time.time())}
        return fid

    async def _file_create(self, request):
        from aiohttp import web

        form = await request.post()
        up, purpose = form.get('file'), form.get('purpose', '')
        if up is None or not hasattr(up, 'file'):
            return web.json_response(_error_body(400, "missing 'file' part"), status=400)
        return web.json_response(self._file_obj(self._add_file(up.file.read(), up.filename or 'upload.jsonl', str(purpose))))

    async def _file_get(self, request):
        from aiohttp import web

        fid = request.match_info['fid']
        if fid not in self.files:
            return web.json_response(_error_body(404, f'no file {fid}'), status=404)
        return web.json_response(self._file_obj(fid))

    async def _file_content(self, request):
        from aiohttp import web

        fid = request.match_info['fid']
        if fid not in self.files:
            return web.json_response(_error_body(404, f'no file {fid}'), status=404)
        return web.Response(body=self.files[fid]['data'], content_type='application/octet-stream')

    # ---- batches
    def _batch_obj(self, bid):
        b = self.batches[bid]
        if b['status'] in ('validating', 'in_progress') and time.time() >= b['ready_at']:
            self._run_batch(b)
        return {k: v for k, v in b.items() if k not in ('ready_at',)}

    def _run_batch(self, b):
        "Answer every line of the batch's input file with the responder; write output and error files."
        out, err = [], []
        lines = [l for l in self.files[b['input_file_id']]['data'].decode().splitlines() if l.strip()]
        for i, line in enumerate(lines):
            req = json.loads(line)
            body = req.get('body') or {}
            with self._lock:
                self.batch_requests.append(body)
            try:
                spec = self.responder(body)
            except Exception as e:
                spec = {'status': 500, 'error': str(e)}
            if not isinstance(spec, dict):
                spec = {'content': spec}
            status = int(spec.get('status', 200))
            rec = {'id': f'batch_req_{i}', 'custom_id': req.get('custom_id')}
            if status == 200 and not spec.get('drop') and not spec.get('hang'):
                out.append(
                    {**rec, 'response': {'status_code': 200, 'request_id': f'req_{i}', 'body': _completion(body, spec, i)}, 'error': None}
                )
            else:
                err.append(
                    {
                        **rec,
                        'response': {
                            'status_code': status if status != 200 else 500,
                            'request_id': f'req_{i}',
                            'body': _error_body(status, spec.get('error')),
                        },
                        'error': None,
                    }
                )
        dump = lambda rs: ('\n'.join(json.dumps(r) for r in rs) + '\n').encode()
        b['output_file_id'] = self._add_file(dump(out), 'output.jsonl', 'batch_output') if out else None
        b['error_file_id'] = self._add_file(dump(err), 'errors.jsonl', 'batch_output') if err else None
        b['status'] = 'completed'
        b['completed_at'] = int(time.time())
        b['request_counts'] = {'total': len(lines), 'completed': len(out), 'failed': len(err)}

    async def _batch_create(self, request):
        from aiohttp import web

        body = await request.json()
        fid = body.get('input_file_id')
        if fid not in self.files:
            return web.json_response(_error_body(400, f'no input file {fid}'), status=400)
        bid = f'batch_{uuid.uuid4().hex[:24]}'
        self.batches[bid] = {
            'id': bid,
            'object': 'batch',
            'endpoint': body.get('endpoint'),
            'errors': None,
            'input_file_id': fid,
            'completion_window': body.get('completion_window', '24h'),
            'status': 'validating',
            'output_file_id': None,
            'error_file_id': None,
            'created_at': int(time.time()),
            'completed_at': None,
            'metadata': body.get('metadata'),
            'request_counts': {'total': 0, 'completed': 0, 'failed': 0},
            'ready_at': time.time() + self.batch_delay,
        }
        return web.json_response(self._batch_obj(bid))

    async def _batch_get(self, request):
        from aiohttp import web

        bid = request.match_info['bid']
        if bid not in self.batches:
            return web.json_response(_error_body(404, f'no batch {bid}'), status=404)
        return web.json_response(self._batch_obj(bid))

    async def _batch_cancel(self, request):
        from aiohttp import web

        bid = request.match_info['bid']
        if bid not in self.batches:
            return web.json_response(_error_body(404, f'no batch {bid}'), status=404)
        if self.batches[bid]['status'] in ('validating', 'in_progress'):
            self.batches[bid]['status'] = 'cancelled'
        return web.json_response(self._batch_obj(bid))

    async def _batch_list(self, request):
        from aiohttp import web

        return web.json_response({'object': 'list', 'data': [self._batch_obj(b) for b in self.batches], 'has_more': False})


def _main(argv=None):
    import argparse

    p = argparse.ArgumentParser(description='fake OpenAI-compatible server (loopback only)')
    p.add_argument('--latency', type=float, default=0.0)
    p.add_argument('--lifetime', type=float, default=600.0)
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--parent', type=int, default=0, help='exit when this process id is gone')
    p.add_argument('--no-record', action='store_true')
    p.add_argument('--faults', default='', help="injected faults, e.g. '429=0.1,500=0.1,truncated=0.1'")
    p.add_argument('--retry-after-ms', type=int, default=200)
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args(argv)
    faults = {k: float(v) for k, v in (kv.split('=') for kv in a.faults.split(',') if kv)}
    srv = FakeOpenAIServer(
        latency=a.latency,
        lifetime=a.lifetime,
        port=a.port,
        record=not a.no_record,
        faults=faults,
        retry_after_ms=a.retry_after_ms,
        fault_seed=a.seed,
    ).start()
    print(srv.base_url, flush=True)
    t_end = time.time() + a.lifetime
    while time.time() < t_end and srv._thread.is_alive():
        if a.parent and not os.path.exists(f'/proc/{a.parent}'):
            break
        time.sleep(0.5)
    srv.stop()


if __name__ == '__main__':
    _main()
