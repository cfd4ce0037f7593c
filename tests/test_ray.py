"""The Ray engine against the local one, on a real local Ray cluster (a head and one worker node on loopback, started here and
stopped at the end even when a test fails): same ids, `dup_of` and verdicts; one rate limit and budget for every worker."""

import contextlib, io, os, shutil, socket, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, pytest

ray = pytest.importorskip('ray')
pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'benchmarks'))
KEY = 'placeholder-ray-0123456789abcdef'  # a stand-in secret: the tests prove it never leaves the driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ray_cli(*args, env, check=True, timeout=120, tries=2):
    "`ray ARGS`; with `check`, a failure is retried once (a loaded machine can time out Ray's start) and then raised with Ray's own output."
    exe = shutil.which('ray') or str(Path(sys.executable).parent / 'ray')
    for _k in range(tries if check else 1):
        r = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=timeout)
        if r.returncode == 0 or not check:
            return r
        time.sleep(3)
    tail = '\n'.join((r.stdout + r.stderr).strip().splitlines()[-15:])
    raise RuntimeError(f"`ray {' '.join(args[:2])}` failed (exit {r.returncode}):\n{tail}")


def _node_procs(port: int, tmp: Path) -> list:
    "This fixture's cluster processes (GCS, raylets, agents, workers): those whose command line names its GCS port or its temp dir; never this process."
    import psutil

    marks, me = (f'127.0.0.1:{port}', f'--gcs_server_port={port}', f'{tmp}/'), os.getpid()
    out = []
    for p in psutil.process_iter(['pid', 'cmdline']):
        try:
            cmd = ' '.join(p.info['cmdline'] or [])
        except (psutil.Error, OSError):
            continue
        if p.pid != me and any(m in cmd for m in marks):
            out.append(p)
    return out


def _stop_nodes(port: int, tmp: Path, core: list) -> list[int]:
    "Stop only this fixture's nodes (SIGTERM, then SIGKILL after 5 s: the GCS and the autoscaler monitor do not exit on SIGTERM alone); `ray stop` would stop every Ray cluster on the machine. The PIDs still alive."
    import psutil

    procs = {p.pid: p for p in [*core, *_node_procs(port, tmp)]}
    for p in list(procs.values()):
        with contextlib.suppress(psutil.Error):
            for c in p.children(recursive=True):
                procs.setdefault(c.pid, c)
    for p in procs.values():
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(list(procs.values()), timeout=5)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=10)
    return [p.pid for p in procs.values() if _running(p)]


def _running(p) -> bool:
    import psutil

    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    "`ray start --head` on loopback (1 CPU) plus one worker node (1 CPU): 2 CPUs in all, the machine is shared. Always stopped: only these nodes."
    port = _free_port()
    tmp = Path('/tmp') / f'sbray{os.getpid()}'  # short: Ray's socket paths must stay under 107 characters
    env = {
        **os.environ,
        'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep),
        'RAY_USAGE_STATS_ENABLED': '0',
        'RAY_DATA_DISABLE_PROGRESS_BARS': '1',
        'RAY_AUTH_MODE': 'disabled',  # a loopback test cluster; a real one keeps token auth
        'OPENAI_API_KEY': KEY,
        'SB_RAY_KEY': KEY,
    }  # workers read keys from the environment of the `ray start` that launched them
    addr = f'127.0.0.1:{port}'
    core: list = []
    try:
        _ray_cli(
            'start',
            '--head',
            '--node-ip-address=127.0.0.1',
            f'--port={port}',
            '--num-cpus=1',
            '--include-dashboard=false',
            '--object-store-memory=400000000',
            f'--temp-dir={tmp}',
            '--disable-usage-stats',
            env=env,
        )
        _ray_cli(
            'start',
            f'--address={addr}',
            '--node-ip-address=127.0.0.1',
            '--num-cpus=1',
            '--object-store-memory=300000000',
            '--disable-usage-stats',
            env=env,
        )
        os.environ['PYTHONPATH'] = env['PYTHONPATH']
        os.environ['RAY_AUTH_MODE'] = 'disabled'
        core = [p for p in _node_procs(port, tmp) if p.name() in ('gcs_server', 'raylet')]
        assert sorted(p.name() for p in core) == ['gcs_server', 'raylet', 'raylet'], [(p.pid, p.name()) for p in core]
        from synthbench.run.rayengine import connect

        r = connect(addr)
        assert int(r.cluster_resources().get('CPU', 0)) == 2, r.cluster_resources()
        assert len([n for n in r.nodes() if n['Alive']]) == 2
        yield addr
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
        left = _stop_nodes(port, tmp, core)
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, f'processes of the test cluster still running: {left}'
        alive = [p.pid for p in core if _running(p)]
        assert not alive, (
            f'the test cluster GCS/raylets still running: {alive}'
        )  # its GCS and both raylets are gone (the other clusters on the machine untouched)


def _table(n, dup_frac=0.1, copies=0, seed=0):
    from dedup_data import short_examples
    from synthbench.core import make_table

    texts, _ = short_examples(n - copies, dup_frac, seed=seed)
    texts = texts + texts[:copies]
    rng = np.random.default_rng(seed)
    return make_table(
        [{'text': t, 'id': f'r{k}', 'judge_overall': float(s)} for k, (t, s) in enumerate(zip(texts, rng.integers(1, 6, len(texts))))],
        source='generated',
    )


def test_dedup_100k_rows_ray_equals_local(cluster):
    "Exact (hash groupby) + MinHash (band shuffle + connected components) on 100k rows: the same marks as the local path."
    from synthbench.stages.dedup import dedup
    from synthbench.run.rayengine import ray_dedup

    df = _table(100_000, 0.1, copies=2_000)
    t0 = time.time()
    loc = dedup(df, ['exact', 'minhash'], progress=False)
    t_loc = time.time() - t0
    T = {}
    t0 = time.time()
    got = ray_dedup(df, ['exact', 'minhash'], timings=T)
    t_ray = time.time() - t0
    print(f'100k rows: local {t_loc:.1f}s, ray {t_ray:.1f}s {T}')
    assert (loc['dup_method'] == 'exact').sum() >= 1_900 and (loc['dup_method'] == 'minhash').sum() > 3_000  # the test can fail
    assert got['id'].tolist() == loc['id'].tolist()
    assert got['dup_of'].tolist() == loc['dup_of'].tolist()
    assert got['dup_method'].tolist() == loc['dup_method'].tolist()
    np.testing.assert_allclose(got['dup_sim'].fillna(-1).to_numpy(), loc['dup_sim'].fillna(-1).to_numpy())


def _clustered_vectors(n: int, d: int = 64, centers: int = 400, dup_frac: float = 0.05, seed: int = 0) -> np.ndarray:
    "Unit vectors around `centers` topics, plus `dup_frac` near-copies (cosine ~0.99 to their original): what MiniLM gives on paraphrases."
    rng = np.random.default_rng(seed)
    C = rng.normal(size=(centers, d))
    X = C[rng.integers(0, centers, n)] + rng.normal(scale=0.6, size=(n, d))
    k = int(n * dup_frac)
    X[rng.choice(n, k, replace=False)] = X[rng.choice(n, k, replace=False)] + rng.normal(scale=0.08, size=(k, d))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def test_embedding_pairs_semdedup_on_workers_equal_local(cluster):
    "Embedding dedup beyond exact_max: k-means clusters on the driver, nearest clusters and in-cluster cosine by tasks; the same pairs as the local search."
    from synthbench.stages.dedup import similar_pairs
    from synthbench.run.rayengine import ray_similar_pairs

    X = _clustered_vectors(60_000)
    s_loc, s_ray, T = {}, {}, {}
    li, lj, ls = similar_pairs(X, 0.95, exact_max=20_000, progress=False, search=s_loc)
    ri, rj, rs = ray_similar_pairs(X, 0.95, exact_max=20_000, search=s_ray, timings=T)
    assert 2_000 < len(li) < 10_000, len(li)  # the planted near-copies are found (and the test can fail)
    assert ri.tolist() == li.tolist() and rj.tolist() == lj.tolist()
    np.testing.assert_array_equal(rs, ls)
    assert s_ray == s_loc and s_loc['mode'] == 'ivf' and s_loc['clusters'] == int(2 * np.sqrt(60_000)), s_loc
    assert T['pair_tasks'] >= 2, T  # the clusters were spread over tasks


def test_embedding_cache_resumes_after_lost_and_cut_shards(cluster, tmp_path, monkeypatch):
    "The actors write a shard per batch: with shards lost (a killed run) and one cut short, the next run embeds exactly those rows."
    import warnings
    from synthbench.run.rayengine import embed_cache_dir, ray_embed_texts
    from synthbench.llm.embed import embed_texts

    texts = [f'Ticket {i}: the {w} export fails after the {i % 7}th retry.' for i, w in enumerate(['CSV', 'PDF', 'invoice', 'audit'] * 150)]
    st: dict = {}
    X = ray_embed_texts(texts, run_dir=tmp_path, batch_rows=50, stats=st)
    assert st['embedded'] == 600 and X.shape == (600, 384)
    shards = sorted(embed_cache_dir(tmp_path).glob('*.parquet'))
    assert len(shards) == 12 and not list(embed_cache_dir(tmp_path).glob('*.tmp'))  # one per batch, each renamed into place
    for f in shards[:2]:
        f.unlink()
    cut = shards[2].read_bytes()
    shards[2].write_bytes(cut[: len(cut) // 3])
    st = {}
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        Y = ray_embed_texts(texts, run_dir=tmp_path, batch_rows=50, stats=st)
    assert st['embedded'] == 150 and st['cached'] == 450 and st['broken_shards'] == 1, st
    assert any('cannot be read' in str(x.message) for x in w) and shards[2].with_suffix('.broken').exists()
    np.testing.assert_allclose(Y, X, atol=1e-5)  # the same vectors again
    np.testing.assert_allclose(Y[:40], embed_texts(texts[:40], cache_dir=False, progress=False), atol=1e-4)  # and the local engine's
    st = {}
    ray_embed_texts(texts, run_dir=tmp_path, stats=st)
    assert st['embedded'] == 0 and st['broken_shards'] == 0
    # shards written where this machine cannot read them (a worker node's own disk): one clear error, not a KeyError
    from synthbench.run import rayengine as RE

    real, seen = RE._read_cache, []

    def half_seen(folder, stats=None):
        index, X = real(folder, stats)
        seen.append(folder)
        return ({k: v for n, (k, v) in enumerate(index.items()) if n % 2} if len(seen) > 1 else index), X

    monkeypatch.setattr(RE, '_read_cache', half_seen)
    with pytest.raises(RuntimeError, match='storage that every node shares'):
        ray_embed_texts([f'A text no run has embedded, number {i}.' for i in range(20)], run_dir=tmp_path / 'other')


def test_cli_dedup_engine_ray_writes_what_local_writes(cluster, tmp_path):
    from synthbench.cli import main
    from synthbench.formats import save_table, load_table

    df = _table(3_000, 0.2, copies=100, seed=2)
    save_table(df, tmp_path / 'in.jsonl')
    outs = {}
    for eng in ('local', 'ray'):
        o, e = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
            code = main(
                [
                    'dedup',
                    str(tmp_path / 'in.jsonl'),
                    '-o',
                    str(tmp_path / f'{eng}.jsonl'),
                    '--method',
                    'exact,minhash',
                    '--no-progress',
                    '--engine',
                    eng,
                    '--address',
                    cluster,
                ]
            )
        assert code == 0, e.getvalue()
        outs[eng] = load_table(tmp_path / f'{eng}.jsonl')
    assert (outs['local']['dup_of'] != '').sum() > 300
    assert outs['ray']['dup_of'].tolist() == outs['local']['dup_of'].tolist()


def test_cli_validate_and_judge_engine_ray_match_local(cluster, tmp_path, monkeypatch):
    "`synthbench validate/judge --engine ray` write the marks and verdicts the local engine writes (teacher-generated rows with planted defects)."
    from synthbench.testing import ScriptedTeacher
    from synthbench.cli import main
    from synthbench.formats import load_table
    from synthbench.run.workbench import run_pipeline

    monkeypatch.setenv('OPENAI_API_KEY', KEY)
    with ScriptedTeacher(REPO / 'seeds' / 'task_api', defect_rate=0.3, seed=5) as t:
        gen = run_pipeline(
            {
                'name': 'g',
                'task': str(REPO / 'seeds' / 'task_api'),
                'seed': 1,
                'stages': [{'generate': {'n': 24}}],
                'llm': {'model': 'gpt-4o-mini', 'base_url': t.base_url, 'progress': False, 'cache_dir': str(tmp_path / 'c0')},
            },
            runs_dir=tmp_path / 'runs',
            verbose=False,
        )
        assert gen.ok, gen.reason
        src = gen.path / '01_generate.parquet'
        outs = {}
        for eng in ('local', 'ray'):
            t._occ.clear()
            for cmd, extra in (
                ('validate', ['--spec', str(REPO / 'seeds' / 'task_api'), '-o', str(tmp_path / f'v_{eng}.parquet')]),
                (
                    'judge',
                    [
                        '-o',
                        str(tmp_path / f'j_{eng}.parquet'),
                        '--spec',
                        str(REPO / 'seeds' / 'task_api'),
                        '--model',
                        'gpt-4o-mini',
                        '--base-url',
                        t.base_url,
                        '--cache-dir',
                        str(tmp_path / f'c_{eng}'),
                    ],
                ),
            ):
                inp = str(src) if cmd == 'validate' else str(tmp_path / f'v_{eng}.parquet')
                err = io.StringIO()
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                    code = main([cmd, inp, *extra, '--engine', eng, '--address', cluster])
                assert code == 0, (cmd, eng, err.getvalue())
            outs[eng] = load_table(tmp_path / f'j_{eng}.parquet')
    L, R = outs['local'], outs['ray']
    assert (L['valid'] == False).sum() >= 2 and (L['judge_pass'] == False).sum() >= 1  # defects were planted and caught
    assert R['id'].tolist() == L['id'].tolist()
    for col in ('valid', 'invalid_reason', 'judge_pass', 'judge_overall'):
        assert R[col].astype(str).tolist() == L[col].astype(str).tolist(), col


def test_task_api_pipeline_ray_equals_local(cluster, tmp_path, monkeypatch):
    "validate -> judge -> dedup (exact, MinHash, embedding) -> filter on what the scripted teacher generated: same ids, marks and verdicts on both engines."
    from synthbench.testing import ScriptedTeacher
    import yaml
    from synthbench.cli import main
    from synthbench.run.workbench import run_pipeline, Run
    from synthbench.run.rayengine import ray_embed_texts

    monkeypatch.setenv('SB_RAY_KEY', KEY)
    monkeypatch.chdir(tmp_path)
    with ScriptedTeacher(REPO / 'seeds' / 'task_api', defect_rate=0.25, seed=4) as t:
        llm = lambda c: {
            'model': 'gpt-4o-mini',
            'base_url': t.base_url,
            'api_key_env': 'SB_RAY_KEY',
            'progress': False,
            'max_retries': 3,
            'cache_dir': str(tmp_path / c),
        }
        gen = run_pipeline(
            {
                'name': 'gen',
                'task': str(REPO / 'seeds' / 'task_api'),
                'llm': llm('cache_gen'),
                'seed': 3,
                'stages': [{'generate': {'n': 36}}],
            },
            runs_dir=tmp_path / 'runs',
            verbose=False,
        )
        assert gen.ok, gen.reason
        stages = ['validate', {'judge': {'threshold': 3.5}}, 'dedup', 'filter', {'audit': {'embed': 'model'}}]
        runs = {}
        for eng in ('local', 'ray'):
            before = t.stats['by_kind'].copy()
            t._occ.clear()  # the teacher varies its answer to a repeated prompt; each engine's run should see the first answers
            cfg = {
                'name': eng,
                'task': str(REPO / 'seeds' / 'task_api'),
                'llm': llm(f'cache_{eng}'),
                'seed': 3,
                'input': str(gen.path / '01_generate.parquet'),
                'stages': stages,
            }
            if eng == 'local':
                runs[eng] = run_pipeline(cfg, runs_dir=tmp_path / 'runs', verbose=False)
            else:  # the CLI: synthbench run --engine ray --address ...
                (tmp_path / 'ray.yaml').write_text(yaml.safe_dump(cfg))
                err = io.StringIO()
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                    code = main(
                        [
                            'run',
                            str(tmp_path / 'ray.yaml'),
                            '--runs-dir',
                            str(tmp_path / 'runs'),
                            '--quiet',
                            '--engine',
                            'ray',
                            '--address',
                            cluster,
                        ]
                    )
                assert code == 0, err.getvalue()
                runs[eng] = Run(tmp_path / 'runs' / 'ray')
            assert runs[eng].ok, runs[eng].reason
            sent = sum(v for k, v in (t.stats['by_kind'] - before).items() if k.startswith('judge'))
            assert sent >= 25, (eng, t.stats['by_kind'])  # each engine asked the teacher itself (fresh caches)
        L, R = runs['local'], runs['ray']
        assert R.manifest['engine'] == 'ray' and L.manifest['engine'] == 'local'
        assert R.manifest['stages'][1]['report']['engine']['batches'] >= 2  # the judge ran on batches of a Ray Dataset
        for stage in ('validate', 'judge', 'dedup'):
            a, b = L.table(stage), R.table(stage)
            assert b['id'].tolist() == a['id'].tolist(), stage
            for col in ('valid', 'invalid_reason', 'judge_pass', 'dup_of', 'dup_method'):
                if col in a:
                    assert b[col].astype(str).tolist() == a[col].astype(str).tolist(), (stage, col)
        assert R.final['id'].tolist() == L.final['id'].tolist()
        au = {
            k: r.manifest['stages'][-1]['report']['metrics'] for k, r in runs.items()
        }  # audit, a whole stage: on the cluster's actor pool under ray
        assert au['ray']['provenance']['engine'] == 'ray' and 'engine' not in au['local']['provenance']
        assert au['ray']['n'] == au['local']['n'] == len(L.final) and au['ray']['copies'] == au['local']['copies']
        assert au['ray']['embedding']['n_clusters'] == au['local']['embedding']['n_clusters']
        truth = t.truth(L.table('validate'))
        assert truth.notna().sum() >= 5 and len(L.final) < len(L.table('validate'))  # defects were planted and some rows left out
        assert R.manifest['stages'][1]['calls'] >= 25  # worker calls are counted in the manifest
        # the embedding cache is Parquet shards in the run folder: a re-run embeds nothing
        from synthbench.stages.dedup import compare_texts

        texts = compare_texts(R.table('validate'))[0]
        st = {}
        ray_embed_texts(texts, run_dir=R.path, stats=st)
        assert st['embedded'] == 0 and st['cached'] == st['unique'] > 25, st


def test_workers_share_one_rate_limit_and_budget(cluster, tmp_path, monkeypatch):
    "Two workers judging through one endpoint: together they stay under its RPM, and together under the dollar cap."
    monkeypatch.setenv('SB_RAY_KEY', KEY)  # the driver's key lives in a variable the workers also have
    from synthbench.testing import ScriptedTeacher
    from synthbench.spec import load_spec
    from synthbench.run.stage import RunContext
    from synthbench.llm.engine import LLM
    from synthbench.run.rayengine import run_row_local, endpoint_limiter, llm_config

    spec = load_spec(REPO / 'seeds' / 'task_api')
    rows = pd.concat([spec.seeds(), spec.seeds()], ignore_index=True).drop_duplicates('id').reset_index(drop=True)
    times = []

    class Timed(ScriptedTeacher):
        def respond(self, body):
            times.append(time.monotonic())
            return super().respond(body)

    with Timed(REPO / 'seeds' / 'task_api', seed=1) as t:
        rpm = 120
        llm = LLM(model='gpt-4o-mini', base_url=t.base_url, api_key=KEY, rpm=rpm, progress=False, cache_dir=tmp_path / 'c1', max_retries=1)
        ctx = RunContext(spec=spec, run_dir=tmp_path)
        t0 = time.monotonic()
        res = run_row_local('judge', rows, {}, ctx, llm=llm, batch_rows=max(1, len(rows) // 4), concurrency=2)
        took = time.monotonic() - t0
        assert res.ok, res.reason
        n = len(times)
        assert n >= len(rows) >= 15
        span = times[-1] - times[0]
        # a token bucket of 2/s with a 2-request burst: n requests need at least (n - 2) / 2 seconds
        assert span >= (n - 2) / (rpm / 60) * 0.95, (n, span)
        per_window = max(sum(1 for x in times if s <= x < s + 5) for s in times)
        assert per_window <= 2 + 5 * rpm / 60 + 1, per_window
        assert res.report['engine']['shared_requests'] == n
        print(f'{n} judge calls from 2 workers in {took:.1f}s (span {span:.1f}s) at rpm={rpm}')

        # budget: a cap that fits only some calls; both workers draw on the one ledger
        times.clear()
        budget = 0.004
        llm2 = LLM(
            model='gpt-4o-mini',
            base_url=t.base_url,
            api_key=KEY,
            budget_usd=budget,
            progress=False,
            cache_dir=tmp_path / 'c2',
            max_retries=1,
        )
        res2 = run_row_local('judge', rows, {}, ctx, llm=llm2, batch_rows=max(1, len(rows) // 4), concurrency=2)
        lim = endpoint_limiter(llm_config(llm2))
        st = ray.get(lim.state.remote())
        assert st['spent_usd'] <= budget + 1e-9, st['spent_usd']
        assert 0 < len(times) < len(rows), (len(times), len(rows))  # some calls were refused for the budget
        assert res2.status == 'failed' and res2.error_kind == 'budget', res2.line()
        print(f'budget ${budget}: {len(times)} of {len(rows)} calls sent, ${st["spent_usd"]:.5f} spent')


def test_api_key_is_never_serialized_to_workers(cluster, tmp_path, monkeypatch):
    "Everything Ray pickles for a judge on the cluster (task and actor arguments, actor classes, puts) holds the key's variable name, never the key."
    from synthbench.testing import ScriptedTeacher
    from synthbench.spec import load_spec
    from synthbench.run.stage import RunContext
    from synthbench.llm.engine import LLM
    from synthbench.run.rayengine import run_row_local
    import ray.cloudpickle as rcp

    monkeypatch.setenv('SB_RAY_KEY', KEY)
    blobs, real = [], rcp.dumps

    def spy(obj, *a, **kw):
        cb = kw.get('buffer_callback')
        if cb is not None:
            kw['buffer_callback'] = lambda b: (blobs.append(bytes(b.raw())), cb(b))[1]
        out = real(obj, *a, **kw)
        blobs.append(bytes(out))
        return out

    monkeypatch.setattr(rcp, 'dumps', spy)
    spec = load_spec(REPO / 'seeds' / 'task_api')
    rows = spec.seeds().drop_duplicates('id').reset_index(drop=True)
    with ScriptedTeacher(REPO / 'seeds' / 'task_api', seed=1) as t:
        llm = LLM(model='gpt-4o-mini', base_url=t.base_url, api_key=KEY, progress=False, cache_dir=tmp_path / 'c', max_retries=1)
        res = run_row_local(
            'judge', rows, {}, RunContext(spec=spec, run_dir=tmp_path), llm=llm, batch_rows=max(1, len(rows) // 2), concurrency=2
        )
    assert res.ok, res.reason
    assert res.report['engine']['shared_requests'] >= len(rows)  # the workers did call the endpoint, with the key
    assert blobs and any(b'SB_RAY_KEY' in b for b in blobs)  # the spy saw the worker config go out
    assert not any(KEY.encode() in b for b in blobs), 'the API key was pickled into a Ray task or actor argument'


def test_key_variable_unset_on_workers_is_one_line(cluster, tmp_path, monkeypatch):
    "A key the driver has but the workers' environment lacks: the stage fails with one line naming the variable and the fix."
    from synthbench.spec import load_spec
    from synthbench.run.stage import RunContext
    from synthbench.llm.engine import LLM
    from synthbench.run.rayengine import run_row_local

    DRIVER_ONLY = 'placeholder-driver-only'  # a stand-in, not a key: the point is that workers never see it
    monkeypatch.setenv('SB_DRIVER_ONLY_KEY', DRIVER_ONLY)
    spec = load_spec(REPO / 'seeds' / 'task_api')
    rows = spec.seeds().drop_duplicates('id').reset_index(drop=True)
    llm = LLM(model='gpt-4o-mini', base_url='http://127.0.0.1:9/v1', api_key=DRIVER_ONLY, progress=False, cache_dir=None)
    res = run_row_local('judge', rows, {}, RunContext(spec=spec, run_dir=tmp_path), llm=llm, batch_rows=len(rows))
    assert res.status == 'failed' and res.error_kind == 'config', res.line()
    assert '$SB_DRIVER_ONLY_KEY is not set on the Ray worker' in res.reason and 'ray start' in res.reason and '\n' not in res.reason
    llm2 = LLM(model='gpt-4o-mini', base_url='http://127.0.0.1:9/v1', api_key='placeholder-in-no-variable', progress=False, cache_dir=None)
    with pytest.raises(Exception, match='not in an environment variable'):
        run_row_local('judge', rows, {}, RunContext(spec=spec, run_dir=tmp_path), llm=llm2)


def test_audit_ray_equals_local_and_map_sample(cluster, tmp_path, monkeypatch):
    "`synthbench audit --engine ray` (embeddings from the actor pool, per-row measures per batch) gives the local audit's headline figures; a sampled map says so."
    from synthbench.analysis.audit import audit
    from synthbench.analysis.metrics import make_demo_table
    from synthbench.formats import save_table
    from synthbench.cli import main
    from synthbench.run.rayengine import embed_cache_dir, read_embed_cache
    from synthbench.llm.embed import default_cache_dir

    monkeypatch.setenv('SYNTHBENCH_CACHE_DIR', str(tmp_path / 'cache'))
    df = make_demo_table(300)
    save_table(df, tmp_path / 'in.jsonl')
    loc = audit(df, embed='model', projection='pca', progress=False).metrics
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(
            [
                'audit',
                str(tmp_path / 'in.jsonl'),
                '--json',
                '--quiet',
                '--embed',
                'model',
                '--projection',
                'pca',
                '--engine',
                'ray',
                '--address',
                cluster,
            ]
        )
    assert code == 0
    import json

    got = json.loads(out.getvalue())
    assert got['provenance']['engine'] == 'ray' and 'Ray actor pool' in got['provenance']['embeddings']
    assert got['n'] == loc['n'] == 300 and got['copies'] == loc['copies'] and got['copies']['rows'] > 0
    assert got['vocabulary'] == loc['vocabulary'] and got['length'] == loc['length']
    assert got['bias']['sentiment_mean'] == pytest.approx(loc['bias']['sentiment_mean'])
    for k in ('mean_cosine_distance', 'vendi_score', 'near_duplicate_rate', 'n_clusters', 'top_cluster_share'):
        assert got['embedding'][k] == pytest.approx(loc['embedding'][k], rel=1e-3, abs=1e-4), k
    assert got['findings'] == loc['findings'] and len(loc['findings']) >= 2
    assert len(read_embed_cache(embed_cache_dir(default_cache_dir()))) >= 250  # the Parquet cache holds every distinct text
    # the map on a sample of 120 rows: said on the plot title, clusters over all 300 rows
    rep = audit(df, embed='model', projection='pca', progress=False, engine='ray', map_sample=120)
    assert rep.map.figure('cluster').layout.title.text.endswith('map of a sample of 120 of 300 rows')
    assert rep.tables['clusters']['size'].sum() == 300 and len(rep.map.points) == 120 and rep.rows['x'].notna().sum() == 120
    assert rep.metrics['n'] == 300 and rep.metrics['copies'] == loc['copies']
    small = audit(df, embed='model', projection='pca', progress=False, engine='ray')  # map_sample not hit: every row on the map
    assert len(small.map.points) == 300 and 'sample' not in small.map.figure('cluster').layout.title.text
    # a bfloat16 model: the actors load it so, its vectors cached apart, and the figures are float32's to two decimals
    bf = audit(df, embed='model', embed_model='all-MiniLM-L6-v2@bf16', projection='pca', progress=False, engine='ray').metrics
    assert bf['provenance']['embeddings'] == 'sentence embeddings (all-MiniLM-L6-v2@bfloat16, Ray actor pool)', bf['provenance']
    assert len(read_embed_cache(embed_cache_dir(default_cache_dir(), 'all-MiniLM-L6-v2@bfloat16'))) >= 250
    for k in ('mean_cosine_distance', 'near_duplicate_rate', 'top_cluster_share'):
        assert bf['embedding'][k] == pytest.approx(loc['embedding'][k], abs=0.01), k
    # embed='auto' and the actor pool fails: the driver embeds instead, and the report says so (never a silent change of engine)
    from synthbench.run import rayengine as RE

    def broken_pool(*a, **k):
        raise RuntimeError('actor died: no model on the worker')

    monkeypatch.setattr(RE, 'ray_embed_texts', broken_pool)
    fell = audit(df, projection='pca', progress=False, engine='ray')
    assert fell.metrics['provenance']['embeddings'].startswith('the Ray actor pool failed (RuntimeError: actor died'), fell.metrics[
        'provenance'
    ]
    assert fell.metrics['embedding']['n_clusters'] == loc['embedding']['n_clusters']
    with pytest.raises(RuntimeError, match='actor died'):
        audit(df, embed='model', projection='pca', progress=False, engine='ray')  # embed='model' asked for the model: the failure ends it


def test_cli_export_engine_ray_writes_what_local_writes(cluster, tmp_path):
    "export is a whole stage: under --engine ray the table is collected here and written as one file, the same file."
    from synthbench.cli import main

    src = REPO / 'seeds' / 'task_api' / 'seeds.jsonl'
    for eng in ('local', 'ray'):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert (
                main(
                    ['export', str(src), '-o', str(tmp_path / f'{eng}.jsonl'), '--engine', eng, '--address', cluster]
                    if eng == 'ray'
                    else ['export', str(src), '-o', str(tmp_path / f'{eng}.jsonl')]
                )
                == 0
            )
    assert (tmp_path / 'ray.jsonl').read_text() == (tmp_path / 'local.jsonl').read_text() and (tmp_path / 'local.jsonl').read_text().count(
        '\n'
    ) >= 10
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(['export', str(src), '-o', str(tmp_path / 'x.jsonl'), '--engine', 'spark']) == 2
    assert err.getvalue().count('\n') == 1 and 'use --engine local or --engine ray' in err.getvalue()


def test_unreachable_cluster_is_one_line_and_exit_1(tmp_path, capsys):
    "No cluster at --address: exit 1 at once with one line naming the address and the fix (not Ray's minutes of retries)."
    from synthbench.cli import main

    p = tmp_path / 'p.yaml'
    p.write_text(f"name: x\ninput: {REPO / 'seeds' / 'task_api' / 'seeds.jsonl'}\nstages: [validate]\n")
    t0 = time.time()
    code = main(['run', str(p), '--engine', 'ray', '--address', f'127.0.0.1:{_free_port()}', '--runs-dir', str(tmp_path / 'runs')])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and time.time() - t0 < 30
    assert 'nothing answers at 127.0.0.1:' in err[-1] and 'ray start --head' in err[-1]


def test_cli_augment_engine_ray_equals_local_and_pays_once(cluster, tmp_path, monkeypatch):
    """`synthbench augment --engine ray`: rows paraphrased and intent-checked in batches by 2 workers through one limiter; the rows (ids, ops, parents)
    the local engine writes, each request sent once (the same count as locally, none on a re-run)."""
    from synthbench.testing import ScriptedTeacher
    from synthbench.cli import main
    from synthbench.formats import load_table, load_examples
    from synthbench.spec import load_spec
    from synthbench.run.stage import RunContext
    from synthbench.llm.engine import LLM
    from synthbench.run.rayengine import ray_stage, stage_kind
    from synthbench.stages.augment import augment_stage

    monkeypatch.setenv('SB_RAY_KEY', KEY)
    seeds = REPO / 'seeds' / 'task_api'
    src = seeds / 'seeds.jsonl'
    outs, sent = {}, {}
    with ScriptedTeacher(seeds, seed=7) as t:

        def cli(eng, cache):
            monkeypatch.setenv('SYNTHBENCH_CACHE_DIR', str(tmp_path / cache))
            t._occ.clear()
            r0 = t.stats['requests']
            err = io.StringIO()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                code = main(
                    [
                        'augment',
                        str(src),
                        '-o',
                        str(tmp_path / f'{eng}.jsonl'),
                        '--op',
                        'paraphrase',
                        '--n',
                        '2',
                        '--check',
                        'llm',
                        '--model',
                        'gpt-4o-mini',
                        '--base-url',
                        t.base_url,
                        '--api-key-env',
                        'SB_RAY_KEY',
                        '--engine',
                        eng,
                    ]
                    + (['--address', cluster] if eng == 'ray' else [])
                )
            assert code == 0, (eng, err.getvalue())
            return t.stats['requests'] - r0

        for eng in ('local', 'ray'):
            sent[eng] = cli(eng, f'cache_{eng}')
            outs[eng] = load_table(tmp_path / f'{eng}.jsonl')
        assert cli('ray', 'cache_ray') == 0  # a re-run: every answer from the cache, nothing paid twice
        L, R = outs['local'], outs['ray']
        n_in = len(load_examples(src))
        assert n_in >= 10 and (L['source'] == 'augmented').sum() >= n_in  # the test can fail: new rows were made
        assert R['id'].tolist() == L['id'].tolist()
        for col in ('op', 'parent_id', 'source', 'aug_check'):
            assert R[col].astype(str).tolist() == L[col].astype(str).tolist(), col
        assert sent['ray'] == sent['local'] >= 2 * n_in, sent  # paraphrase + intent check per row, each sent once
        # the stage function under the Ray engine: batches on 2 workers, every request counted by the one shared limiter
        spec = load_spec(seeds)
        llm = LLM(model='gpt-4o-mini', base_url=t.base_url, api_key=KEY, progress=False, cache_dir=tmp_path / 'c3', max_retries=1)
        ctx = RunContext(spec=spec, run_dir=tmp_path, llms={'main': llm}, engine='ray')
        t._occ.clear()
        r0 = t.stats['requests']
        df = load_examples(src)
        res = ray_stage('augment', augment_stage, 'synthbench.stages.augment:augment_stage')(df, ctx=ctx, op='paraphrase', n=2, check='llm')
        assert res.ok, res.line()
        e = res.report['engine']
        assert e['batches'] >= 2 and e['shared_requests'] == t.stats['requests'] - r0 == sent['local'], (e, sent)
        assert res.table['id'].tolist() == L['id'].tolist() and res.report['new_rows'] == (L['source'] == 'augmented').sum()
        assert llm.stats['calls'] == sent['local']  # the workers' calls counted on the run's client
    assert stage_kind('augment', {'op': 'edge'}) == 'whole' and stage_kind('augment', {'op': 'paraphrase'}) == 'row_local'


def test_ray_dedup_openai_embeddings_booked_once_on_the_runs_ledger(cluster, tmp_path, monkeypatch):
    "`openai:` embeddings under `engine: ray` go through the run's client on the run's shared limiter: booked once; over budget, the stage fails (kind budget) before any request."
    from fake_openai import FakeOpenAIServer, embedding_tokens
    from synthbench.core import make_table
    from synthbench.llm.cost import price_for
    from synthbench.llm.engine import LLM
    from synthbench.run.stage import RunContext
    from synthbench.run.workbench import run_stage
    from synthbench.stages.dedup import dedup_stage
    from synthbench.run.rayengine import ray_stage

    monkeypatch.setenv('SB_RAY_KEY', KEY)
    monkeypatch.setenv('SYNTHBENCH_CACHE_DIR', str(tmp_path / 'home1'))
    small = 'text-embedding-3-small'
    words = ['refund', 'invoice', 'password', 'shipping', 'warranty', 'upgrade', 'coupon', 'delivery']
    texts = [f'How do I ask about my {w} status for order {k}?' for k, w in enumerate(words[:6])]
    df = make_table([{'text': x, 'id': f'e{k}'} for k, x in enumerate(texts + [texts[1], texts[4]])], source='generated')
    stage = ray_stage('dedup', dedup_stage, 'synthbench.stages.dedup:dedup_stage')
    p = {'methods': ['embedding'], 'embed_model': f'openai:{small}', 'against_seeds': False}
    with FakeOpenAIServer() as srv:
        llm = LLM(model='gpt-4o-mini', base_url=srv.base_url, api_key=KEY, cache_dir=tmp_path / 'llm', budget_usd=1.0, progress=False)
        res = run_stage(stage, df, p, RunContext(llms={'main': llm}, run_dir=tmp_path, engine='ray'))
        assert res.ok, res.line()
        assert res.table['dup_of'].fillna('').astype(bool).tolist() == [False] * 6 + [True, True]
        billed = sum(embedding_tokens(x) for x in texts)  # repeats embedded once
        usd = billed * price_for(small)[0] / 1e6
        assert srv.n_embed_requests >= 1 and srv.embed_tokens == billed
        assert llm.spent_usd == pytest.approx(usd) and llm.stats['usd'] == pytest.approx(usd)  # booked once in the run's ledger ...
        e = res.report['engine']  # ... and once on the stage's shared limiter (the workers' one)
        assert e['shared_requests'] == srv.n_embed_requests and e['shared_spent_usd'] == pytest.approx(usd, abs=1e-9), e
        assert res.report['embeddings']['usd'] == pytest.approx(usd) and res.report['embeddings']['texts'] == 6
        assert res.report['engine']['engine'] == 'ray'
        # over budget (new caches): the stage fails with kind budget and sends nothing
        monkeypatch.setenv('SYNTHBENCH_CACHE_DIR', str(tmp_path / 'home2'))
        n = srv.n_embed_requests
        llm2 = LLM(model='gpt-4o-mini', base_url=srv.base_url, api_key=KEY, cache_dir=tmp_path / 'llm2', budget_usd=1e-9, progress=False)
        res2 = run_stage(
            stage, df, {**p, 'methods': ['exact', 'embedding']}, RunContext(llms={'main': llm2}, run_dir=tmp_path, engine='ray')
        )
        assert res2.status == 'failed' and res2.error_kind == 'budget' and '\n' not in res2.reason, res2.line()
        assert srv.n_embed_requests == n and llm2.spent_usd == 0 and 'dup_of' not in res2.table
