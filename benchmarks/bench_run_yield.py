"""Yield and leak of a whole run against the scripted capable teacher, per seed set.

For each seed set: `synthbench run` (generate -> validate -> judge -> dedup -> filter -> export) against
`synthbench.testing.ScriptedTeacher` at a planted-defect rate (default 20%), then the teacher's ground truth
says how many clean generated rows reached the export (yield), how many defects got through (leak, by kind),
how many exported rows are near-copies of each other, and whether every category kept at least half of its
target share. Targets (issue: a run you can trust): yield >= 0.90, leak <= 0.02, near-dup <= 0.02, share >= 0.5.

    python benchmarks/bench_run_yield.py [--n 200] [--defect-rate 0.2] [--tasks task_api,support_tickets,policy_qa]
"""

import argparse, json, os, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tests'))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=200)
    ap.add_argument('--defect-rate', type=float, default=0.2)
    ap.add_argument('--tasks', default='task_api,support_tickets,policy_qa')
    a = ap.parse_args()
    from synthbench.spec import load_spec
    from synthbench.testing import ScriptedTeacher
    from test_run_e2e import write_pipeline, llm_line, FULL, run_cli, figures, KEY

    os.environ['SB_E2E_KEY'] = KEY
    rows = []
    for task in a.tasks.split(','):
        tmp = Path(tempfile.mkdtemp())
        os.chdir(tmp)
        os.environ['SYNTHBENCH_CACHE_DIR'] = str(tmp / 'cache')
        with ScriptedTeacher(REPO / 'seeds' / task, defect_rate=a.defect_rate, seed=1) as t:
            p = write_pipeline(tmp, task, llm_line(t.base_url), FULL.replace('N', str(a.n)))
            t0 = time.time()
            code, out, err = run_cli(p)
            secs = time.time() - t0
            if code != 0:
                print(f'{task}: run exited {code}: {err.strip().splitlines()[-1]}')
                continue
            f = figures(t, tmp / 'runs' / 'e2e', load_spec(REPO / 'seeds' / task))
        f.update(task=task, seconds=round(secs, 1))
        rows.append(f)
    print(
        f"\nplanted defects {a.defect_rate:.0%}, n={a.n}; targets: yield >= 0.90, leak <= 0.02, near-dup <= 0.02, min share/target >= 0.5"
    )
    print(
        f"{'task':<16}{'generated':>10}{'clean':>7}{'exported':>9}{'yield':>7}{'leak':>7}{'near-dup':>9}{'share':>7}{'secs':>7}  defects through"
    )
    for f in rows:
        print(
            f"{f['task']:<16}{f['generated']:>10}{f['clean generated']:>7}{f['exported']:>9}{f['yield']:>7.3f}{f['leak']:>7.3f}"
            f"{f['near-dup share']:>9.3f}{f['category share / target (min)']:>7.2f}{f['seconds']:>7}  {json.dumps(f['defects exported by kind'])}"
        )


if __name__ == '__main__':
    main()
