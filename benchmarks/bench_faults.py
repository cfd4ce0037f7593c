"""The LLM engine against a fake server that misbehaves like real endpoints (a separate process on 127.0.0.1).

Injected faults, each a share of the requests: 429 (with `retry-after-ms` and `Retry-After`, as OpenAI sends),
500, and 200 answers whose JSON body is cut in half. Prints figures and ratios side by side:

  (a) 500 requests, 50 concurrent, 0.05 s latency: time with 30% faults vs 0% (target <= 3x), how many ended in
      errors (target 0 within the retry budget), and what a re-run on the same cache sends (target 0).
  (b) 2,000 requests at 100 concurrent, 20% faults: requests/s of synthbench vs bespokelabs-curator (its OpenAI
      backend pointed at the fake server's base_url), when a Python with curator is given (--curator-python).
  (c) the response cache's writer: commits and CPU per request with today's 0.2 s batching vs 50 ms commits,
      and what a kill -9 can lose with each (answers per commit window).

    python benchmarks/bench_faults.py                        # all of it (a few minutes on 2 cores)
    python benchmarks/bench_faults.py --quick                # smaller runs
    python benchmarks/bench_faults.py --baseline /path/to/an/older/checkout   # same runs with that synthbench, side by side
    python benchmarks/bench_faults.py --curator-python /path/to/venv/bin/python

curator is not a dependency of synthbench (it pins older openai/pandas/datasets than this project uses); install it
into a separate virtual environment and pass its python. Each client runs in its own process; the machine it runs on
may be shared, so timings are noisy: compare ratios within one run.
"""

import argparse, json, os, subprocess, sys, tempfile, textwrap, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, 'tests'))
from fake_openai import FakeOpenAIServer

FAULTS = lambda share: {'429': share / 3, '500': share / 3, 'truncated': share / 3} if share else None

SYNTHBENCH_WORKER = textwrap.dedent('''
    import json, sys, time
    a = json.loads(sys.argv[1])
    from synthbench.llm.engine import LLM
    import synthbench.llm.cache as C
    if a.get('flush_every') is not None: C.ResponseCache.__init__.__defaults__ = (a['flush_every'],) + C.ResponseCache.__init__.__defaults__[1:]
    prompts = [[{'role': 'user', 'content': f"{a['tag']} request number {i}"}] for i in range(a['n'])]
    def make():
        return LLM('fake-model', base_url=a['url'], api_key='bench', max_concurrency=a['conc'], cache_dir=a['cache'],
                   progress=False, max_retries=a['retries'])
    llm = make()
    t0, c0 = time.perf_counter(), time.process_time()
    res = llm.chat_many(prompts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    kinds = {}
    for r in res:
        if r.error is not None: k = getattr(r, 'error_kind', None) or 'unknown'; kinds[k] = kinds.get(k, 0) + 1
    g = llm._gate
    out = dict(wall=wall, cpu=cpu, errors=sum(r.error is not None for r in res), kinds=kinds, retries=llm.stats['retries'],
               min_limit=getattr(g, 'min_limit', None), limit=g.limit, max=g.max,
               commits=getattr(llm.cache, 'n_commits', None) if llm.cache is not None else None)
    if a.get('rerun'):
        import urllib.request
        stats = lambda: json.loads(urllib.request.urlopen(a['url'].replace('/v1', '/__stats'), timeout=5).read())
        before = stats()['n_requests']
        again = make().chat_many(prompts)
        out['rerun_sent'] = stats()['n_requests'] - before
        out['rerun_errors'] = sum(r.error is not None for r in again)
    print('RESULT ' + json.dumps(out))
''')

CURATOR_WORKER = textwrap.dedent('''
    import json, os, sys, time, logging
    a = json.loads(sys.argv[1])
    os.environ['CURATOR_CACHE_DIR'] = a['cache']; os.environ['TELEMETRY_ENABLED'] = 'false'
    logging.disable(logging.WARNING)
    from bespokelabs import curator
    class Echo(curator.LLM):
        def prompt(self, row): return row['q']
        def parse(self, row, response): return {'q': row['q'], 'a': response}
    llm = Echo(model_name='fake-model', backend='openai',
               backend_params={'base_url': a['url'], 'api_key': 'bench', 'max_retries': a['retries'], 'request_timeout': 60,
                               'max_requests_per_minute': 10_000_000, 'max_tokens_per_minute': 10_000_000_000,
                               'max_concurrent_requests': a['conc'], 'seconds_to_pause_on_rate_limit': 1,   # its shortest pause
                               'require_all_responses': False})
    rows = [{'q': f"{a['tag']} request number {i}"} for i in range(a['n'])]
    t0, c0 = time.perf_counter(), time.process_time()
    out = llm(rows)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ds = getattr(out, 'dataset', out)
    got = sum(1 for r in ds if r.get('a'))
    print('RESULT ' + json.dumps(dict(wall=wall, cpu=cpu, errors=a['n'] - got, kinds={}, retries=None)))
''')


def worker(python, code, args, env_path=None, timeout=900):
    "Run a worker script in its own process; its RESULT line as a dict (or {'failed': reason})."
    env = dict(os.environ)
    if env_path:
        env['PYTHONPATH'] = env_path
    with tempfile.NamedTemporaryFile('w', suffix='.py', delete=False) as f:
        f.write(code)
    try:
        p = subprocess.run([python, f.name, json.dumps(args)], capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {'failed': f'timed out after {timeout}s'}
    finally:
        os.unlink(f.name)
    for line in p.stdout.splitlines():
        if line.startswith('RESULT '):
            return json.loads(line[7:])
    return {'failed': (p.stderr.strip().splitlines() or ['no output'])[-1][:200]}


def synthbench_run(root, n, conc, latency, share, tag, retries=8, rerun=False, flush_every=None, cache=True):
    with FakeOpenAIServer(latency=latency, process=True, record=False, faults=FAULTS(share), retry_after_ms=200) as srv:
        args = dict(
            url=srv.base_url,
            n=n,
            conc=conc,
            tag=tag,
            retries=retries,
            rerun=rerun,
            flush_every=flush_every,
            cache=tempfile.mkdtemp(prefix='bench_faults_') if cache else None,
        )
        r = worker(sys.executable, SYNTHBENCH_WORKER, args, root)
        r['faults'] = sum(srv.stats()['n_faults'].values()) if 'failed' not in r else None
        return r


def tiktoken_cache() -> str:
    "A TIKTOKEN_CACHE_DIR holding the encodings bpe_openai ships (curator's tiktoken would download them; offline here)."
    import gzip, hashlib, importlib.util

    d = tempfile.mkdtemp(prefix='tiktoken_')
    data = os.path.join(os.path.dirname(importlib.util.find_spec('bpe_openai').origin), 'data')
    for name in ('cl100k_base', 'o200k_base'):
        url = f'https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken'
        with (
            gzip.open(os.path.join(data, f'{name}.tiktoken.gz'), 'rb') as f,
            open(os.path.join(d, hashlib.sha1(url.encode()).hexdigest()), 'wb') as g,
        ):
            g.write(f.read())
    return d


def curator_run(python, n, conc, latency, share, tag, retries=8):
    os.environ.setdefault('TIKTOKEN_CACHE_DIR', tiktoken_cache())
    with FakeOpenAIServer(latency=latency, process=True, record=False, faults=FAULTS(share), retry_after_ms=200) as srv:
        return worker(
            python,
            CURATOR_WORKER,
            dict(url=srv.base_url, n=n, conc=conc, tag=tag, retries=retries, cache=tempfile.mkdtemp(prefix='bench_curator_')),
        )


def fmt(r, key, f='{:.2f}'):
    if 'failed' in r:
        return 'n/a'
    v = r.get(key)
    return '-' if v is None else f.format(v)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--quick', action='store_true', help='smaller runs')
    p.add_argument('--baseline', help='another synthbench checkout (its root folder) to run the same way, side by side')
    p.add_argument('--curator-python', help='a python that has bespokelabs-curator installed (for part b)')
    p.add_argument('--skip', default='', help='parts to skip, e.g. "b,c"')
    a = p.parse_args()
    clients = [('synthbench (this checkout)', ROOT)] + (
        [(f'synthbench baseline ({a.baseline})', os.path.abspath(a.baseline))] if a.baseline else []
    )
    print(f'fake server: separate process on 127.0.0.1; cores: {os.cpu_count()} (shared machines give noisy timings)')
    if 'a' not in a.skip:
        n, conc, lat = (200, 50, 0.05) if a.quick else (500, 50, 0.05)
        print(
            f'\n(a) {n} requests, {conc} concurrent, {lat}s latency; faults: 429 (retry-after-ms 200) / 500 / truncated 200, equal shares; max_retries=8'
        )
        print(
            f"{'client':<44}{'faults':>7}{'time s':>8}{'vs 0%':>7}{'errors':>8}{'retries':>9}{'min conc':>9}{'end conc':>9}{'re-run sent':>12}"
        )
        for name, root in clients:
            base = synthbench_run(root, n, conc, lat, 0.0, 'clean', rerun=True)
            flt = synthbench_run(root, n, conc, lat, 0.3, 'faulty', rerun=True)
            for share, r in ((0.0, base), (0.3, flt)):
                ratio = (r['wall'] / base['wall']) if 'failed' not in r and 'failed' not in base else None
                print(
                    f"{name:<44}{share:>7.0%}{fmt(r, 'wall'):>8}{'-' if ratio is None else f'{ratio:.1f}x':>7}{fmt(r, 'errors', '{}'):>8}"
                    f"{fmt(r, 'retries', '{}'):>9}{fmt(r, 'min_limit', '{}'):>9}{fmt(r, 'limit', '{}'):>9}{fmt(r, 'rerun_sent', '{}'):>12}"
                    + (f"   failed: {r['failed']}" if 'failed' in r else (f"   kinds: {r['kinds']}" if r.get('kinds') else ''))
                )
        print('targets: 30% faults <= 3x the 0% time, 0 errors, re-run sends 0')
    if 'b' not in a.skip:
        n, conc, lat = (600, 100, 0.05) if a.quick else (2000, 100, 0.05)
        print(f'\n(b) {n} requests, {conc} concurrent, {lat}s latency, 20% faults; max_retries=8')
        print(f"{'client':<44}{'time s':>8}{'req/s':>8}{'errors':>8}{'cpu ms/req':>12}{'vs synthbench':>15}")
        rows = [(name, synthbench_run(root, n, conc, lat, 0.2, 'b')) for name, root in clients]
        if a.curator_python:
            rows.append(('bespokelabs-curator (openai backend)', curator_run(a.curator_python, n, conc, lat, 0.2, 'b')))
        ref = rows[0][1]
        for name, r in rows:
            if 'failed' in r:
                print(f'{name:<44}   failed: {r["failed"]}')
                continue
            rps = n / r['wall']
            ratio = rps / (n / ref['wall']) if 'failed' not in ref else None
            print(
                f"{name:<44}{r['wall']:>8.2f}{rps:>8.0f}{r['errors']:>8}{1000 * r['cpu'] / n:>12.3f}{'-' if ratio is None else f'{ratio:.2f}':>15}"
            )
        if not a.curator_python:
            print('bespokelabs-curator: skipped (pass --curator-python PATH: a python with bespokelabs-curator installed)')
        else:
            print(
                "curator pauses all requests after a 429 for seconds_to_pause_on_rate_limit (an int, set here to its least, 1 s); "
                "synthbench waits what the server asks (200 ms) for that request only"
            )
    if 'c' not in a.skip:
        n, conc, lat = (1000, 100, 0.02) if a.quick else (3000, 100, 0.02)
        print(f'\n(c) response cache writer: {n} requests, {conc} concurrent, {lat}s latency, no faults')
        print(f"{'writer':<44}{'time s':>8}{'req/s':>8}{'commits':>9}{'cpu ms/req':>12}{'answers/commit':>16}")
        for label, fe in (('today: commit every 0.2 s', 0.2), ('now: commit every 50 ms', 0.05)):
            r = synthbench_run(ROOT, n, conc, lat, 0.0, f'w{fe}', flush_every=fe)
            if 'failed' in r:
                print(f'{label:<44}   failed: {r["failed"]}')
                continue
            print(
                f"{label:<44}{r['wall']:>8.2f}{n / r['wall']:>8.0f}{r['commits']:>9}{1000 * r['cpu'] / n:>12.3f}{n / max(1, r['commits']):>16.0f}"
            )
        print('a kill -9 loses at most the answers of one commit window (plus those still being read)')


if __name__ == '__main__':
    main()
