"""Preference pairs against the scripted teacher: how often "chosen" is truly the better reply, what was dropped and why,
and the length-bias figures, for a pointwise judge, a fair pairwise judge and a position-biased pairwise judge.

The prompts are the task_api seeds plus 40 rows the teacher generates; candidates at temperatures 0.2/0.7/1.0/1.2.
The teacher logs the truth of every sample, so "chosen right" = chosen is the right reply and rejected a flawed one.

    python benchmarks/bench_prefs.py
    python benchmarks/bench_prefs.py --bias 0.5     # position bias of the pairwise judge
"""

import argparse, os, tempfile, time, warnings
import pandas as pd

os.environ.setdefault('HF_HUB_OFFLINE', '1')
from synthbench.core import seeds_path
from synthbench.stages.generate import generate
from synthbench.llm.engine import LLM
from synthbench.stages.prefs import preference_pairs
from synthbench.spec import load_spec
from synthbench.testing import ScriptedTeacher


def truth(t, pairs):
    ok = [(t.sample_truth(p['prompt'], p['chosen']), t.sample_truth(p['prompt'], p['rejected'])) for p in pairs.to_dict('records')]
    return sum(c is None and r not in (None, 'unknown') for c, r in ok) / max(1, len(ok))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--bias', type=float, default=0.35)
    ap.add_argument('--n', type=int, default=40)
    a = ap.parse_args()
    spec = load_spec(seeds_path('task_api'))
    warnings.simplefilter('ignore')
    with ScriptedTeacher('task_api', defect_rate=0.2, seed=3) as t, tempfile.TemporaryDirectory() as d:
        mk = lambda m, sub: LLM(model=m, base_url=t.base_url, api_key='k', cache_dir=os.path.join(d, sub), progress=False)
        df = pd.concat([spec.seeds(), generate(spec, a.n, mk('gen', 'g'), k=10, max_rounds=2)], ignore_index=True)
        rows = []
        for name, kw, bias in [
            ('pointwise', {}, 0.0),
            ('pairwise', {'pairwise': True}, 0.0),
            (f'pairwise, position bias {a.bias:g}', {'pairwise': True}, a.bias),
        ]:
            t.position_bias = bias
            t0 = time.time()
            r = preference_pairs(df, mk('teacher-gen', name), spec, judge_llm=mk('teacher-judge', name), **kw)
            lb = r.report['length_bias']
            rows.append(
                {
                    'judge': name,
                    'prompts': r.report['prompts'],
                    'pairs': len(r.pairs),
                    **{f'drop {k}': v for k, v in r.report['dropped'].items()},
                    'chosen right': f'{truth(t, r.pairs):.0%}',
                    'mean margin': r.report['mean_margin'],
                    'chosen longer': lb['share_chosen_longer'],
                    'length ratio': lb['mean_length_ratio'],
                    'score~length rho': (lb['score_length'] or {}).get('spearman'),
                    'inconsistent cmp': r.report['inconsistent_comparisons'],
                    'seconds': round(time.time() - t0, 1),
                }
            )
    print(pd.DataFrame(rows).fillna(0).to_string(index=False))


if __name__ == '__main__':
    main()
