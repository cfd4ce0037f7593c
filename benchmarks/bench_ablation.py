"""What judge filtering and dedup change about the student: the task_api pipeline against the scripted capable teacher
with planted defects, in four variants (full, no judge, no dedup, neither); each variant's kept rows fine-tune the
embedded SmolLM2-135M with the same settings and seed, and each student is scored on the seed set's heldout.jsonl.

    HF_HUB_OFFLINE=1 nice -n 10 python benchmarks/bench_ablation.py                  # n 300, 30 steps: ~10 min on 2 quiet cores
    HF_HUB_OFFLINE=1 python benchmarks/bench_ablation.py --n 100 --steps 10 --limit 16   # a quick look

Every variant asks the teacher the same generation requests (one response cache), so the four runs start from the
same generated rows and differ only in what the judge and dedup keep. Prints one table: rows kept, planted defects
that got through (by kind, from `teacher.truth`), and the student's held-out figures with bootstrap 95% intervals;
`--json FILE` writes the same figures. The tutorial nbs/tutorials/ablation.ipynb shows a run of these functions.
Measured 2026-12-02 (--steps 15, 43 held-out rows; format compliance / all fields, 95% CIs): base 9% [2, 19] / 0%;
full 19% [9, 33] / 5% [0, 12]; no judge 63% [49, 77] / 7% [0, 16]; no dedup 65% [51, 79] / 12% [2, 21];
neither 40% [26, 56] / 5% [0, 12]. Defects through: 3, 22, 26, 48. No pattern follows the defects at 15 steps:
the batch draw of a short run moves the student more than the filters do."""

import argparse, json, os, sys, tempfile, time
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
REPO = Path(__file__).resolve().parent.parent

VARIANTS = {'full': (True, True), 'no judge': (False, True), 'no dedup': (True, False), 'neither': (False, False)}  # (judge, dedup)
FIGURES = ('format_compliance', 'field_action', 'field_title', 'field_all_fields', 'accuracy', 'macro_f1', 'exact_match')


def variant_pipeline(variant: str, n: int = 300, task: str | Path = REPO / 'seeds' / 'task_api', seed: int = 0) -> dict:
    "The pipeline of one ablation variant: generate -> validate -> [judge] -> [dedup] -> filter -> add_seeds -> export."
    judge, dedup = VARIANTS[variant]
    stages = [{'generate': {'n': n}}, 'validate']
    if judge:
        stages.append('judge')
    if dedup:
        stages.append({'dedup': {'methods': ['exact', 'minhash']}})
    drop = ['invalid'] + (['unjudged', 'rejected'] if judge else []) + (['duplicate'] if dedup else [])
    stages += [{'filter': {'drop': drop}}, 'add_seeds', 'export']  # export: OpenAI chat JSONL (text/label rows: text)
    return {'name': variant.replace(' ', '_'), 'task': str(task), 'seed': seed, 'stages': stages}


def kept_rows(teacher, llm, variant: str, runs_dir, n: int = 300, task=REPO / 'seeds' / 'task_api', seed: int = 0):
    "Run one variant against `teacher` through `llm`: (exported table, figures of what got through)."
    from synthbench.run.workbench import run_pipeline

    run = run_pipeline(variant_pipeline(variant, n, task, seed), runs_dir=runs_dir, llm=llm, verbose=False)
    if not run.ok:
        raise RuntimeError(f'{variant}: {run.reason}')
    out = run.final
    gen = out[out['source'].eq('generated').values]
    truth = teacher.truth(gen)
    return out, {
        'rows kept': len(out),
        'generated kept': len(gen),
        'defects through': int(truth.notna().sum()),
        'by kind': {str(k): int(v) for k, v in truth.dropna().value_counts().items()},
    }


def train_and_score(df, spec, out_dir, steps: int = 30, seed: int = 0, limit: int | None = None, max_new_tokens: int = 48):
    "Fine-tune the local student on `df` (the first line of the spec's system prompt, as the finetune stage does) and score it on held-out."
    from synthbench.stages.finetune import finetune, LoraSettings
    from synthbench.analysis.evaluate import evaluate

    sp = spec.system_prompt.strip().split('\n')[0]
    if 'messages' in df:  # train with the prompt the student is scored with, not each row's own (long) system turn
        df = df.assign(messages=[[m for m in ms if m['role'] != 'system'] if isinstance(ms, list) else ms for ms in df['messages']])
    s = LoraSettings(max_steps=steps, batch_size=8, max_len=128, lr=2e-3, seed=seed, save_every=max(steps, 1))
    t0 = time.perf_counter()
    r = finetune(df, 'smollm2-135m', 'local', out_dir, s, system_prompt=sp, progress=False)
    t_train = time.perf_counter() - t0
    ev = evaluate(
        r.student, spec=spec, system_prompt=sp, max_new_tokens=max_new_tokens, limit=limit, name=Path(out_dir).name, progress=False
    )
    return ev, {
        'train_s': round(t_train),
        's_per_step': round(r.report['seconds_per_step'], 2),
        'loss': (r.report['first_loss'], r.report['last_loss']),
    }


def fmt(v) -> str:
    x, lo, hi = v
    return '-' if x != x else f'{x:.0%} [{lo:.0%}, {hi:.0%}]'


def table(results: dict) -> str:
    "One line per variant (and the base student): rows kept, defects through, held-out figures with 95% intervals."
    figs = [f for f in FIGURES if any(f in r.get('figures', {}) for r in results.values())]
    head = f"{'variant':10}{'rows kept':>10}{'defects':>9}  {'defects by kind':34}" + ''.join(f'{f:>22}' for f in figs)
    lines = [head, '-' * len(head)]
    for k, r in results.items():
        kind = ', '.join(f'{a} {b}' for a, b in sorted(r.get('by kind', {}).items())) if 'rows kept' in r else ''
        lines.append(
            f"{k:10}{r.get('rows kept', '-'):>10}{r.get('defects through', '-'):>9}  {kind[:34]:34}"
            + ''.join(f"{fmt(r['figures'][f]) if f in r['figures'] else '-':>22}" for f in figs)
        )
    return '\n'.join(lines)


def run_ablation(
    n: int = 300,
    steps: int = 30,
    defect_rate: float = 0.3,
    limit: int | None = None,
    seed: int = 0,
    variants=tuple(VARIANTS),
    work_dir=None,
    base: bool = True,
    log=print,
) -> dict:
    "Every variant: its kept rows, its student's held-out figures; plus the base student once. Returns {name: figures}."
    from synthbench.testing import ScriptedTeacher
    from synthbench.llm.engine import LLM
    from synthbench.spec import load_spec

    task = REPO / 'seeds' / 'task_api'
    spec = load_spec(task)
    work = Path(work_dir or tempfile.mkdtemp(prefix='ablation_'))
    res = {}
    with ScriptedTeacher(task, defect_rate=defect_rate, seed=seed) as t:
        llm = LLM(model='gpt-4o-mini', base_url=t.base_url, api_key='sk-' + 'teacher', cache_dir=work / 'cache', progress=False)
        data = {v: kept_rows(t, llm, v, work / 'runs', n, task, seed) for v in variants}
    if base:
        from synthbench.analysis.evaluate import evaluate

        sp = spec.system_prompt.strip().split('\n')[0]
        ev = evaluate('smollm2-135m', spec=spec, system_prompt=sp, max_new_tokens=48, limit=limit, name='base', progress=False)
        res['base'] = {'figures': ev.figures}
        log(f"base: {', '.join(f'{k} {fmt(v)}' for k, v in ev.figures.items() if k in FIGURES)}")
    for v in variants:
        df, f = data[v]
        ev, tr = train_and_score(df, spec, work / 'students' / v.replace(' ', '_'), steps, seed, limit)
        res[v] = {**f, **tr, 'figures': ev.figures, 'heldout_rows': len(ev.table)}
        log(
            f"{v}: {f['rows kept']} rows, {f['defects through']} defects {f['by kind']}; trained {tr['train_s']} s; "
            + ', '.join(f'{k} {fmt(x)}' for k, x in ev.figures.items() if k in FIGURES)
        )
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=300, help='rows asked of the teacher per run (default 300)')
    p.add_argument('--steps', type=int, default=30, help='LoRA steps per student, batch 8 (default 30)')
    p.add_argument('--defect-rate', type=float, default=0.3)
    p.add_argument('--limit', type=int, default=None, help='score only the first LIMIT held-out rows (default: all 43)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--variants', default=','.join(VARIANTS), help='comma-separated, from: ' + ', '.join(VARIANTS))
    p.add_argument('--work-dir', default=None, help='keep runs and students here (default: a temp folder)')
    p.add_argument('--json', default=None, help='also write the figures to this file')
    a = p.parse_args(argv)
    vs = [v.strip() for v in a.variants.split(',')]
    bad = [v for v in vs if v not in VARIANTS]
    if bad:
        print(f'bench_ablation: unknown variant(s) {bad}; use {list(VARIANTS)}', file=sys.stderr)
        return 2
    t0 = time.time()
    res = run_ablation(a.n, a.steps, a.defect_rate, a.limit, a.seed, vs, a.work_dir)
    print(
        f'\nn={a.n}, defect_rate={a.defect_rate}, {a.steps} steps x batch 8, seed {a.seed}; {time.time() - t0:.0f} s in all\n' + table(res)
    )
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == '__main__':
    sys.exit(main())
