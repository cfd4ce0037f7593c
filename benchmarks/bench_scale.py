"""Scale curve: exact + MinHash dedup at 10k -> 100k -> 1M rows, local engine vs Ray engine (a local Ray cluster of 2 CPUs
started by each measurement), seconds and peak memory (the process and every child: Ray's raylet, object store and workers);
plus the measured per-row cost of MiniLM embeddings on both engines and the projection to 1M rows and to a 16-node cluster.

    python benchmarks/bench_scale.py                       # 10k, 100k, 1M dedup; 2k-row embedding sample
    python benchmarks/bench_scale.py --sizes 10000,100000 --embed-rows 1000
    python benchmarks/bench_scale.py --pipeline 1000000 --run-dir /data/scale1m   # embed + exact + MinHash + embedding dedup
    python benchmarks/bench_scale.py --search 100000,1000000   # the embedding-dedup search alone, on synthetic 384-d vectors

`--pipeline N` runs the whole dedup stage on the Ray engine over N rows (MiniLM embeddings from the actor pool, cached in
`--run-dir`; exact, MinHash and the SemDeDup-style embedding search), then the local engine on the same rows and the same
vectors, and checks that `dup_of` is equal. The embedding cache is resumable: a killed run (or one stopped by `--timeout`)
keeps every finished shard, and the same command goes on from there; the figures say how many vectors this run embedded.

Each (engine, size) runs in a fresh subprocess so peak memory is its own. Every Ray measurement checks that its `dup_of`
equals the local one on the same input (stored next to the timings). Timings on a shared 2-core machine are noisy."""

from __future__ import annotations
import argparse, contextlib, json, os, re, subprocess, sys, tempfile, threading, time
from pathlib import Path
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def scale_texts(n: int, dup_frac: float = 0.1, seed: int = 0) -> list[str]:
    "`n` short texts (three real reference sentences each; unique triples) with `dup_frac` lightly edited copies."
    from dedup_data import pydoc_sentences, edit_typos, edit_numbers_names, edit_synonyms

    rng = np.random.default_rng(seed)
    sents = pydoc_sentences(6, 18)
    n_dup = int(n * dup_frac)
    n_orig = n - n_dup
    tri = rng.integers(0, len(sents), size=(int(n_orig * 1.05) + 10, 3))
    tri = tri[(tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])]
    tri = np.unique(np.sort(tri, 1), axis=0)[:n_orig]
    tri = tri[rng.permutation(len(tri))]
    orig = [f'{sents[a]} {sents[b]} {sents[c]}' for a, b, c in tri.tolist()]
    light = [edit_typos, edit_numbers_names, lambda t, r: edit_synonyms(t, r, 1)]
    dups = [light[int(rng.integers(3))](orig[g], rng) for g in rng.integers(0, len(orig), n_dup)]
    texts = orig + dups
    return [texts[i] for i in rng.permutation(len(texts))]


def _peak_sampler(stop: threading.Event, out: dict):
    import psutil

    me = psutil.Process()
    while not stop.is_set():
        try:
            procs = [me] + me.children(recursive=True)
            rss = sum(p.memory_info().rss for p in procs if p.is_running())
            out['peak'] = max(out.get('peak', 0), rss)
        except Exception:
            pass
        stop.wait(0.25)


def measure(engine: str, n: int, data_dir: str) -> dict:
    "One measurement in this process: dedup exact+minhash on `n` rows; seconds, peak RSS, marks."
    import pandas as pd
    from synthbench.core import make_table

    f = Path(data_dir) / f'texts_{n}.parquet'
    texts = pd.read_parquet(f)['text'].tolist()
    df = make_table([{'text': t, 'id': f'r{k}'} for k, t in enumerate(texts)], source='generated')
    stop, mem = threading.Event(), {}
    th = threading.Thread(target=_peak_sampler, args=(stop, mem), daemon=True)
    th.start()
    T = {}
    if engine == 'ray':
        from synthbench.run.rayengine import connect, ray_dedup

        t = time.perf_counter()
        connect(None, num_cpus=2)
        T['start_s'] = time.perf_counter() - t
        t = time.perf_counter()
        out = ray_dedup(df, ['exact', 'minhash'], timings=T)
        secs = time.perf_counter() - t
    else:
        from synthbench.stages.dedup import dedup

        t = time.perf_counter()
        out = dedup(df, ['exact', 'minhash'], progress=False)
        secs = time.perf_counter() - t
    stop.set()
    th.join()
    out[['dup_of']].to_parquet(Path(data_dir) / f'dup_{engine}_{n}.parquet')
    return {
        'engine': engine,
        'rows': n,
        'seconds': round(secs, 2),
        'peak_rss_gb': round(mem.get('peak', 0) / 2**30, 2),
        'marked': int((out['dup_of'] != '').sum()),
        'steps': {k: round(v, 2) if isinstance(v, float) else v for k, v in T.items()},
    }


def measure_embed(engine: str, n: int, data_dir: str) -> dict:
    "Seconds per row of MiniLM embeddings (no cache) on `n` texts (on Ray: the start of the actor pool left out)."
    import pandas as pd

    texts = pd.read_parquet(Path(data_dir) / 'texts_10000.parquet')['text'].tolist()[:n]
    stop, mem = threading.Event(), {}
    th = threading.Thread(target=_peak_sampler, args=(stop, mem), daemon=True)
    th.start()
    if engine == 'ray':
        from synthbench.run.rayengine import connect, ray_embed_texts

        connect(None, num_cpus=2)
        with tempfile.TemporaryDirectory() as d:
            # each call starts its actor pool, and each actor loads the model: the per-row cost is the slope between two sizes
            q = max(64, n // 4)
            t = time.perf_counter()
            ray_embed_texts(texts[-q:], run_dir=d)
            t_q = time.perf_counter() - t
            t = time.perf_counter()
            ray_embed_texts(texts, run_dir=d + '/b')
            t_n = time.perf_counter() - t
            secs = (t_n - t_q) * n / (n - q)
    else:
        from synthbench.llm.embed import embed_texts

        embed_texts(texts[:64], cache_dir=False, progress=False)
        t = time.perf_counter()
        embed_texts(texts, cache_dir=False, progress=False)
        secs = time.perf_counter() - t
    stop.set()
    th.join()
    return {
        'engine': engine,
        'rows': n,
        'seconds': round(secs, 2),
        'ms_per_row': round(1000 * secs / n, 2),
        'rows_per_s': round(n / secs, 1),
        'peak_rss_gb': round(mem.get('peak', 0) / 2**30, 2),
    }


def clustered_vectors(n: int, d: int = 384, centers: int = 2000, dup_frac: float = 0.05, seed: int = 0) -> np.ndarray:
    "Unit vectors around `centers` topics plus `dup_frac` near-copies (cosine ~0.99): the shape of MiniLM vectors of paraphrases."
    rng = np.random.default_rng(seed)
    C = rng.normal(size=(centers, d)).astype(np.float32)
    X = C[rng.integers(0, centers, n)] + rng.normal(scale=0.6, size=(n, d)).astype(np.float32)
    k = int(n * dup_frac)
    X[rng.choice(n, k, replace=False)] = X[rng.choice(n, k, replace=False)] + rng.normal(scale=0.08, size=(k, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def measure_search(engine: str, n: int, data_dir: str) -> dict:
    "The embedding-dedup search alone on `n` synthetic 384-d vectors: local `similar_pairs` or `ray_similar_pairs`; pairs stored."
    X = np.load(Path(data_dir) / f'vectors_{n}.npy')
    stop, mem = threading.Event(), {}
    th = threading.Thread(target=_peak_sampler, args=(stop, mem), daemon=True)
    th.start()
    T: dict = {}
    search: dict = {}
    if engine == 'ray':
        from synthbench.run.rayengine import connect, ray_similar_pairs

        connect(None, num_cpus=2)
        t = time.perf_counter()
        i, j, s = ray_similar_pairs(X, 0.95, search=search, timings=T)
    else:
        from synthbench.stages.dedup import similar_pairs

        t = time.perf_counter()
        i, j, s = similar_pairs(X, 0.95, progress=False, search=search)
    secs = time.perf_counter() - t
    stop.set()
    th.join()
    np.savez(Path(data_dir) / f'pairs_{engine}_{n}.npz', i=i, j=j, s=s)
    return {
        'engine': engine,
        'rows': n,
        'seconds': round(secs, 1),
        'peak_rss_gb': round(mem.get('peak', 0) / 2**30, 2),
        'pairs': int(len(i)),
        'search': search,
        'steps': {k: round(v, 1) if isinstance(v, float) else v for k, v in T.items()},
    }


def search_curve(sizes: list[int], timeout: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        print(f"{'rows':>9} {'engine':<6} {'seconds':>8} {'peak GB':>8} {'pairs':>8}  equal  clusters  steps", flush=True)
        for n in sizes:
            np.save(Path(d) / f'vectors_{n}.npy', clustered_vectors(n))
            for eng in ('local', 'ray'):
                r = _sub('search', eng, n, d, timeout)
                if 'error' in r:
                    print(f"{n:>9} {eng:<6} ERROR {r['error']}", flush=True)
                    continue
                eq = ''
                if eng == 'ray' and (Path(d) / f'pairs_local_{n}.npz').exists():
                    a, b = np.load(Path(d) / f'pairs_ray_{n}.npz'), np.load(Path(d) / f'pairs_local_{n}.npz')
                    eq = str(all(np.array_equal(a[k], b[k]) for k in 'ijs'))
                print(
                    f"{n:>9} {eng:<6} {r['seconds']:>8.1f} {r['peak_rss_gb']:>8.2f} {r['pairs']:>8}  {eq:<5}  {r['search'].get('clusters', '-'):>8}  {r['steps']}",
                    flush=True,
                )


def measure_pipeline(engine: str, n: int, data_dir: str) -> dict:
    "The dedup stage's three methods on `n` rows: Ray with its actor-pool embeddings (cached in `data_dir`), or local on those vectors."
    import pandas as pd
    from synthbench.core import make_table

    texts = pd.read_parquet(Path(data_dir) / f'texts_{n}.parquet')['text'].tolist()
    df = make_table([{'text': t, 'id': f'r{k}'} for k, t in enumerate(texts)], source='generated')
    stop, mem = threading.Event(), {}
    th = threading.Thread(target=_peak_sampler, args=(stop, mem), daemon=True)
    th.start()
    T: dict = {}
    from synthbench.run.rayengine import connect, ray_dedup, ray_embed_texts

    model = os.environ.get('BENCH_SCALE_MODEL') or None  # --embed-model (e.g. all-MiniLM-L6-v2@bfloat16)
    connect(None, num_cpus=2)
    t = time.perf_counter()
    if engine == 'ray':
        st: dict = {}
        X = ray_embed_texts(texts, run_dir=data_dir, model=model, stats=st)  # what the stage's embedding pass does first; counted apart
        T['pool_embed_s'], T['embedded_now'], T['cached'] = time.perf_counter() - t, st['embedded'], st['cached']
        out = ray_dedup(df, ['exact', 'minhash', 'embedding'], run_dir=data_dir, embed_model=model, timings=T)
    else:
        from synthbench.stages.dedup import dedup

        X = ray_embed_texts(texts, run_dir=data_dir, model=model)  # the same vectors, read from the cache (nothing embedded)
        T['read_vectors_s'] = time.perf_counter() - t
        out = dedup(df, ['exact', 'minhash', 'embedding'], embeddings=X, progress=False)
    secs = time.perf_counter() - t
    stop.set()
    th.join()
    search = out.attrs.get('embedding_search', {})
    out[['dup_of', 'dup_method']].to_parquet(Path(data_dir) / f'pipe_{engine}_{n}.parquet')
    audit_n = None
    if os.environ.get('BENCH_SCALE_AUDIT') == '1':  # --with-audit: the audit of the same rows on the same engine, same vectors
        from synthbench.analysis.audit import audit

        t = time.perf_counter()
        rep = audit(df, embeddings=X, engine=engine, progress=False)  # the same vectors on both engines: the audit's own work
        T['audit_s'] = time.perf_counter() - t
        audit_n = {'n': rep.metrics.get('n'), 'clusters': rep.metrics.get('embedding', {}).get('n_clusters')}
        secs = time.perf_counter() - t + secs
    return {
        'engine': engine,
        'rows': n,
        'seconds': round(secs, 1),
        'peak_rss_gb': round(mem.get('peak', 0) / 2**30, 2),
        'marked': {m: int((out['dup_method'] == m).sum()) for m in ('exact', 'minhash', 'embedding')},
        'search': search,
        'audit': audit_n,
        'steps': {k: round(v, 1) if isinstance(v, float) else v for k, v in T.items()},
    }


def pipeline(n: int, run_dir: str, timeout: int) -> int:
    import pandas as pd

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    f = Path(run_dir) / f'texts_{n}.parquet'
    if not f.exists():
        pd.DataFrame({'text': scale_texts(n)}).to_parquet(f)
    model = os.environ.get('BENCH_SCALE_MODEL') or 'all-MiniLM-L6-v2 (float32)'
    print(
        f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {n} rows in {run_dir}; embeddings {model}",
        flush=True,
    )
    res = {}
    for eng in ('ray', 'local'):
        r = _sub('pipeline', eng, n, run_dir, timeout)
        res[eng] = r
        if 'error' in r:
            print(f"{eng}: ERROR {r['error']} (the embedding cache keeps what was done: run the same command again)", flush=True)
            return 1
        print(
            f"{eng:<6} {r['seconds']:>8.1f}s  peak {r['peak_rss_gb']:.2f} GB  marked {r['marked']}  search {r['search']}  audit {r['audit']}",
            flush=True,
        )
        print(f"       steps {r['steps']}", flush=True)
    a, b = (pd.read_parquet(Path(run_dir) / f'pipe_{e}_{n}.parquet') for e in ('ray', 'local'))
    print(
        f"ray dup_of equals local: {a['dup_of'].equals(b['dup_of'])}; dup_method equal: {a['dup_method'].equals(b['dup_method'])}",
        flush=True,
    )
    e = res['ray']['steps']
    if e.get('embedded_now'):
        print(
            f"embedded in this run: {e['embedded_now']} vectors in {e['pool_embed_s']:.0f}s = {e['embedded_now'] / e['pool_embed_s']:.1f} rows/s",
            flush=True,
        )
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    return 0


def _sub(kind: str, engine: str, n: int, data_dir: str, timeout: int) -> dict:
    env = {
        **os.environ,
        'PYTHONPATH': os.pathsep.join([str(HERE.parent), str(HERE), os.environ.get('PYTHONPATH', '')]),
        'RAY_AUTH_MODE': 'disabled',
    }
    cmd = [sys.executable, __file__, '--one', kind, engine, str(n), data_dir]
    t = time.perf_counter()
    # its own session, killed as a group on timeout: the Ray cluster that ray.init started dies with it (no `ray stop --force`,
    # which would stop every Ray cluster on a shared machine)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {'engine': engine, 'rows': n, 'error': f'timed out after {timeout}s'}
    except BaseException:  # Ctrl-C or SIGTERM here: the measurement (its own session) and its Ray cluster stop too
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        raise
    line = next((l for l in reversed(out.splitlines()) if l.startswith('{')), None)
    errs = err.strip().splitlines() or ['?']
    why = next((l for l in reversed(errs) if re.search(r'\b\w*(Error|Exception)\b', l)), errs[-1])  # the exception, not Ray's retry advice
    if proc.returncode or line is None:
        return {'engine': engine, 'rows': n, 'error': why.strip()[:300], 'seconds_until_failure': round(time.perf_counter() - t, 1)}
    return json.loads(line)


def main(argv=None):
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed benchmark stops its measurement subprocess as well
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', default='10000,100000,1000000')
    ap.add_argument('--embed-rows', type=int, default=2000)
    ap.add_argument('--timeout', type=int, default=1800, help='seconds per measurement')
    ap.add_argument('--out', default=None, help='write the figures as JSON here')
    ap.add_argument('--pipeline', type=int, default=0, metavar='N', help='embed + dedup (all three methods) on N rows, Ray then local')
    ap.add_argument('--search', default='', metavar='SIZES', help='the embedding search alone on synthetic vectors, e.g. 100000,1000000')
    ap.add_argument('--with-audit', action='store_true', help='with --pipeline: the audit of the same rows too')
    ap.add_argument(
        '--embed-model', default=None, help='with --pipeline: the embedding model spec, e.g. all-MiniLM-L6-v2@bfloat16 (default float32)'
    )
    ap.add_argument('--run-dir', default=None, help='with --pipeline: the folder of texts and the resumable embedding cache')
    ap.add_argument('--one', nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        kind, engine, n, d = a.one
        print(
            json.dumps(
                {'dedup': measure, 'embed': measure_embed, 'pipeline': measure_pipeline, 'search': measure_search}[kind](engine, int(n), d)
            )
        )
        return 0
    if a.search:
        search_curve([int(x) for x in a.search.split(',')], a.timeout)
        return 0
    if a.pipeline:
        if not a.run_dir:
            ap.error('--pipeline needs --run-dir (the embedding cache lives there, so a stopped run goes on)')
        if a.embed_model:
            from synthbench.llm.embed import canonical_model

            os.environ['BENCH_SCALE_MODEL'] = canonical_model(a.embed_model)  # a misspelt precision ends here, with one line
        if a.with_audit:
            os.environ['BENCH_SCALE_AUDIT'] = '1'  # read by the measuring subprocesses
        return pipeline(a.pipeline, a.run_dir, a.timeout)
    import pandas as pd

    sizes = [int(s) for s in a.sizes.split(',')]
    res = {'dedup': [], 'embed': [], 'cpus': os.cpu_count(), 'load': os.getloadavg()}
    print(
        f"{os.cpu_count()} CPUs, load average at the start {' '.join(f'{x:.2f}' for x in os.getloadavg())} (timings on a shared machine are noisy)",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as d:
        for n in sorted(set(sizes) | {10000}):
            pd.DataFrame({'text': scale_texts(n)}).to_parquet(Path(d) / f'texts_{n}.parquet')
        print(f"{'rows':>9} {'engine':<6} {'seconds':>8} {'peak GB':>8} {'marked':>8}  equal  steps", flush=True)
        for n in sizes:
            for eng in ('local', 'ray'):
                r = _sub('dedup', eng, n, d, a.timeout)
                if eng == 'ray' and 'error' not in r and (Path(d) / f'dup_local_{n}.parquet').exists():
                    r['equal_to_local'] = bool(
                        pd.read_parquet(Path(d) / f'dup_ray_{n}.parquet')['dup_of'].equals(
                            pd.read_parquet(Path(d) / f'dup_local_{n}.parquet')['dup_of']
                        )
                    )
                res['dedup'].append(r)
                if 'error' in r:
                    print(f"{n:>9} {eng:<6} ERROR {r['error']}", flush=True)
                    continue
                print(
                    f"{n:>9} {eng:<6} {r['seconds']:>8.1f} {r['peak_rss_gb']:>8.2f} {r['marked']:>8}  {str(r.get('equal_to_local', '')):<5}  {r['steps']}",
                    flush=True,
                )
        if a.embed_rows:
            for eng in ('local', 'ray'):
                r = _sub('embed', eng, a.embed_rows, d, a.timeout)
                res['embed'].append(r)
                print(
                    f"embed {a.embed_rows} rows, {eng}: "
                    + (
                        f"{r['seconds']}s = {r['rows_per_s']} rows/s, peak {r['peak_rss_gb']} GB -> 1M rows ~ {r['ms_per_row'] * 1e6 / 3.6e6:.1f} h on this machine"
                        if 'error' not in r
                        else f"ERROR {r['error']}"
                    ),
                    flush=True,
                )
    ok = [r for r in res['embed'] if 'error' not in r]
    if ok:
        best = min(r['ms_per_row'] for r in ok)
        print(
            f"projection, 16 nodes x 16 cores (MiniLM, CPU, scaled from {os.cpu_count()} cores, linear in workers): "
            f"1M rows ~ {best * 1e6 / 1000 * os.cpu_count() / 256 / 60:.1f} min"
        )
    res['load_end'] = os.getloadavg()
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in res['load_end'])}", flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
