"""Embedded local model (SmolLM2-135M via llama-cpp-python's server) and offline token counting.

Prints, side by side in one run: server start time, decode tokens/s with 1 and 2 threads, and
token-counting throughput. Run: `python benchmarks/bench_local_model.py` (1-3 minutes on 2 busy cores).
"""

import os, time
from synthbench.llm.local import LocalServer
from synthbench.llm.cost import count_tokens, count_message_tokens


def bench_server(n_threads: int, max_tokens: int = 64, reps: int = 2) -> dict:
    t = time.perf_counter()
    srv = LocalServer(n_threads=n_threads).start()
    start_s = time.perf_counter() - t
    try:
        c = srv.openai_client()
        c.chat.completions.create(model=srv.model, max_tokens=4, messages=[{'role': 'user', 'content': 'hi'}])  # warm
        rates, prompt_rates = [], []
        for i in range(reps):
            t = time.perf_counter()
            r = c.chat.completions.create(
                model=srv.model,
                max_tokens=max_tokens,
                temperature=0,
                messages=[{'role': 'user', 'content': f'Write a long story about robot number {i}.'}],
            )
            rates.append(r.usage.completion_tokens / (time.perf_counter() - t))
            long_prompt = 'Summarise: ' + 'The quick brown fox jumps over the lazy dog. ' * 30 + f' ({i})'
            t = time.perf_counter()
            r = c.chat.completions.create(model=srv.model, max_tokens=1, messages=[{'role': 'user', 'content': long_prompt}])
            prompt_rates.append(r.usage.prompt_tokens / (time.perf_counter() - t))
        return dict(start_s=start_s, decode_tps=max(rates), prompt_tps=max(prompt_rates))
    finally:
        srv.stop()


def bench_tokens(n: int = 50_000) -> float:
    texts = [f'Example {i}: add a task to buy {i} apples before Friday, and remind me at 9am.' for i in range(n)]
    count_tokens('warm')
    t = time.perf_counter()
    sum(count_tokens(s, 'gpt-4o-mini') for s in texts)
    return n / (time.perf_counter() - t)


if __name__ == '__main__':
    print(f'cores available: {len(os.sched_getaffinity(0))}, load average: {os.getloadavg()[0]:.1f}')
    res = {th: bench_server(th) for th in (1, 2)}
    print(f"{'n_threads':>9} | {'start s':>7} | {'decode tok/s':>12} | {'prompt tok/s':>12}")
    for th, r in res.items():
        print(f"{th:>9} | {r['start_s']:>7.2f} | {r['decode_tps']:>12.1f} | {r['prompt_tps']:>12.0f}")
    print(f"decode ratio 1 thread / 2 threads: {res[1]['decode_tps'] / res[2]['decode_tps']:.2f}x")
    tps = bench_tokens()
    msgs = [{'role': 'system', 'content': 'You write examples.'}, {'role': 'user', 'content': 'Add a task: buy milk'}]
    t = time.perf_counter()
    [count_message_tokens(msgs, 'gpt-4o-mini') for _ in range(20_000)]
    mps = 20_000 / (time.perf_counter() - t)
    print(f'count_tokens: {tps:,.0f} distinct short texts/s; count_message_tokens (repeated prompt, cached): {mps:,.0f} requests/s')
