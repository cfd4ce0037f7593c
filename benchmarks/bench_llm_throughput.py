"""Throughput of the LLM engine against a fake server with fixed latency (a separate process).

Ideal throughput is concurrency / latency. Prints, side by side in one run, achieved/ideal and CPU ms per
request for synthbench's `LLM.chat_many` (cache off and on) and for a plain `openai.AsyncOpenAI` client
(default httpx transport, and the SDK's aiohttp transport), all sending the same requests.

    python benchmarks/bench_llm_throughput.py            # 100 and 1,000 concurrent, 0.5 s latency
    python benchmarks/bench_llm_throughput.py --quick    # smaller runs
Targets: >= 95% of ideal at 100 concurrent; >= 1,000 req/s at 1,000 concurrent.
"""

import argparse, asyncio, os, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'tests'))
from fake_openai import FakeOpenAIServer


def prompts(n, tag):
    return [[{'role': 'user', 'content': f'{tag} request number {i}'}] for i in range(n)]


def measure(fn):
    "Wall seconds and process CPU seconds (all threads) of `fn()`."
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def run_synthbench(url, conc, n, tag, cache_dir=None):
    from synthbench.llm.engine import LLM

    llm = LLM('fake-model', base_url=url, api_key='bench', max_concurrency=conc, cache_dir=cache_dir, progress=False, max_retries=2)
    llm.chat_many(prompts(min(conc, 200), f'warm{tag}'))  # open connections, as a long run would
    wall, cpu, res = measure(lambda: llm.chat_many(prompts(n, tag)))
    bad = sum(r.error is not None for r in res)
    return wall, cpu, bad


def run_openai(url, conc, n, tag, aiohttp_transport=False):
    import openai

    async def main():
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: None)  # the SDK's aiohttp client warns at exit
        kw = {'http_client': openai.DefaultAioHttpClient()} if aiohttp_transport else {}
        if not aiohttp_transport:
            import httpx

            kw['http_client'] = openai.DefaultAsyncHttpxClient(limits=httpx.Limits(max_connections=conc, max_keepalive_connections=conc))
        client = openai.AsyncOpenAI(base_url=url, api_key='bench', max_retries=0, **kw)
        sem = asyncio.Semaphore(conc)

        async def one(m):
            async with sem:
                try:
                    r = await client.chat.completions.create(model='fake-model', messages=m)
                    return r.choices[0].message.content is None
                except Exception:
                    return True

        await asyncio.gather(*(one(m) for m in prompts(min(conc, 200), f'warm{tag}')))
        t0, c0 = time.perf_counter(), time.process_time()
        bad = sum(await asyncio.gather(*(one(m) for m in prompts(n, tag))))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        await client.close()
        return wall, cpu, bad

    return asyncio.run(main())


def run_raw_aiohttp(url, conc, n, tag):
    "Lower bound on client cost: bare aiohttp posts + JSON parsing, no retries, cache or accounting."
    import aiohttp, json

    async def main():
        hdr = {'authorization': 'Bearer bench', 'content-type': 'application/json'}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as s:
            sem = asyncio.Semaphore(conc)

            async def one(m):
                async with sem:
                    try:
                        async with s.post(
                            url + '/chat/completions', data=json.dumps({'model': 'fake-model', 'messages': m}), headers=hdr
                        ) as r:
                            return json.loads(await r.read())['choices'][0]['message']['content'] is None
                    except Exception:
                        return True

            await asyncio.gather(*(one(m) for m in prompts(min(conc, 200), f'warm{tag}')))
            t0, c0 = time.perf_counter(), time.process_time()
            bad = sum(await asyncio.gather(*(one(m) for m in prompts(n, tag))))
            return time.perf_counter() - t0, time.process_time() - c0, bad

    return asyncio.run(main())


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--latency', type=float, default=0.5)
    p.add_argument('--quick', action='store_true', help='fewer requests per run')
    p.add_argument('--skip-sdk', action='store_true', help='skip the plain openai SDK comparison')
    a = p.parse_args()
    plans = [(100, 4), (1000, 6)] if not a.quick else [(100, 2), (1000, 3)]  # (concurrency, waves of requests)
    print(f'fake server: separate process, latency {a.latency}s; cores: {os.cpu_count()}')
    print(f"{'client':<34}{'conc':>6}{'n':>7}{'req/s':>9}{'ideal':>8}{'ratio':>7}{'cpu ms/req':>12}{'errors':>8}")
    with FakeOpenAIServer(latency=a.latency, process=True, record=False) as srv:
        for conc, waves in plans:
            n, ideal = conc * waves, conc / a.latency
            runs = [
                ('synthbench LLM (cache off)', lambda t: run_synthbench(srv.base_url, conc, n, t)),
                ('synthbench LLM (cache on)', lambda t: run_synthbench(srv.base_url, conc, n, t, tempfile.mkdtemp())),
            ]
            runs.append(('raw aiohttp (reference)', lambda t: run_raw_aiohttp(srv.base_url, conc, n, t)))
            if not a.skip_sdk:
                runs += [
                    ('openai AsyncOpenAI (httpx)', lambda t: run_openai(srv.base_url, conc, n, t)),
                    ('openai AsyncOpenAI (aiohttp)', lambda t: run_openai(srv.base_url, conc, n, t, True)),
                ]
            for k, (name, fn) in enumerate(runs):
                wall, cpu, bad = fn(f'c{conc}r{k}')
                rps = n / wall
                print(f'{name:<34}{conc:>6}{n:>7}{rps:>9.0f}{ideal:>8.0f}{rps / ideal:>7.2f}{1000 * cpu / n:>12.3f}{bad:>8}', flush=True)


if __name__ == '__main__':
    main()
