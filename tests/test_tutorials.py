"Run the tutorials' full-size branches (`if FULL:`) end to end against the fake OpenAI server, at a reduced N."

import json, os, random, re, subprocess, sys
from pathlib import Path
import pytest
from fake_openai import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]

_WORDS = {  # words a customer / chat user might use per label (for plausible, non-duplicate fake examples)
    'billing': 'invoice charged twice refund payment card bill subscription price fee',
    'shipping': 'parcel tracking delivery courier address package late arrived',
    'returns': 'return send back damaged exchange refund label broken wrong size',
    'account': 'login password locked email username profile delete sign in',
    'technical': 'app crashes error bug update install sync freezes version',
    'product': 'feature compatible size colour spec does it work with warranty',
    'ai': 'are you a robot artificial intelligence computer program conscious machine',
    'coding': 'python code program function variable compile java loop',
    'emotion': 'feel sad happy angry lonely love afraid upset',
    'psychology': 'mind behaviour think dream memory personality brain therapy',
    'trivia': 'who was first president capital city year invented largest planet',
}
_FILLER = 'today please hi again maybe really just now soon quick question thanks hello yesterday my the a'.split()


def _sentence(label: str, rng: random.Random) -> str:
    w = _WORDS.get(label, 'something').split()
    return ' '.join(rng.sample(w, 4) + rng.sample(_FILLER, 3)) + f' #{rng.randint(1000, 99999)}?'


def responder(body: dict) -> str:
    "Plausible structured answers: generation batches follow their focus lines; the judge scores 5, or 1 for a wrong amount."
    prompt = body['messages'][-1]['content']
    rng = random.Random(prompt + str(body.get('temperature')) + str(len(prompt)))
    if 'Return a JSON object with the keys' in prompt:
        names = re.findall(r'"(\w+)_score"', prompt)
        bad = 'EUR 600 per person' in prompt.split('<example>')[-1]
        return json.dumps({**{f'{n}_score': 1 if bad else 5 for n in names}, **{f'{n}_reason': 'checked' for n in names}, 'summary': 'ok'})
    focus = re.findall(r'^\d+\. (.+)$', prompt.split('## Focus of each example')[-1], flags=re.M)
    combos = [dict(kv.split(' = ', 1) for kv in line.split(', ') if ' = ' in kv) for line in focus] or [{}]
    if '"text"' in prompt:
        return json.dumps({'examples': [{'text': _sentence(c.get('label', ''), rng), 'label': c.get('label')} for c in combos]})
    return json.dumps(
        {
            'examples': [
                {
                    'messages': [
                        {'role': 'user', 'content': _sentence('billing', rng)},
                        {'role': 'assistant', 'content': f'Per the policy, yes ({rng.randint(1, 10**6)}). [§3.{rng.randint(1, 3)}]'},
                    ]
                }
                for c in combos
            ]
        }
    )


def run_notebook(name: str, tmp_path: Path, srv, n: int):
    env = {
        **os.environ,
        'OPENAI_API_KEY': 'test-key-not-real',
        'OPENAI_BASE_URL': srv.base_url,
        'SYNTHBENCH_MODEL': 'fake-gen',
        'SYNTHBENCH_JUDGE_MODEL': 'fake-judge',
        'SYNTHBENCH_N': str(n),
        'SYNTHBENCH_CACHE_DIR': str(tmp_path / 'cache'),
        'HF_HUB_OFFLINE': '1',
        'TRANSFORMERS_OFFLINE': '1',
    }
    p = subprocess.run(
        ['nbdev-test', str(ROOT / 'nbs' / 'tutorials' / f'{name}.ipynb')], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    return p


@pytest.mark.slow
@pytest.mark.parametrize('name,n', [('grounded_policy', 12), ('support_tickets', 60)])
def test_full_branch_against_fake_server(name, n, tmp_path):
    with FakeOpenAIServer(responder=responder) as srv:
        run_notebook(name, tmp_path, srv, n)
        models = {b.get('model') for b in srv.requests}
    assert {'fake-gen', 'fake-judge'} <= models, models  # generator and a different judge both called
    assert len(srv.requests) >= n // 20 + 2
    assert not any('test-key-not-real' in f.read_text(errors='ignore') for f in (tmp_path / 'cache').rglob('*') if f.is_file())


# ---------- the tutorials run after the README's install command (`pip install -e ".[all]"`) ----------


def _dist_name(req: str) -> str:
    return re.split(r'[\s\[<>=!~;@]', req.strip(), maxsplit=1)[0].lower().replace('_', '-').replace('.', '-')


def declared_for_extra(extra: str = 'all') -> set[str]:
    "Distribution names (normalised) the base dependencies and `extra` declare, `synthbench[...]` self-references expanded."
    import tomllib

    proj = tomllib.loads((ROOT / 'pyproject.toml').read_text(encoding='utf-8'))['project']
    extras, out, todo, seen = proj.get('optional-dependencies', {}), {_dist_name(r) for r in proj.get('dependencies', [])}, [extra], set()
    while todo:
        e = todo.pop()
        if e in seen:
            continue
        seen.add(e)
        assert e in extras, f"pyproject.toml has no extra {e!r}"
        for r in extras[e]:
            m = re.match(r'\s*synthbench\[([^\]]+)\]', r)
            if m:
                todo += [x.strip() for x in m.group(1).split(',')]
            else:
                out.add(_dist_name(r))
    return out


def notebook_imports(path: Path) -> set[str]:
    "Top-level module names a notebook's code cells import (magics and shell lines skipped)."
    import ast

    nb, mods = json.loads(path.read_text(encoding='utf-8')), set()
    for c in nb['cells']:
        if c['cell_type'] != 'code':
            continue
        src = '\n'.join(l for l in ''.join(c['source']).splitlines() if not l.lstrip().startswith(('%', '!')))
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                mods |= {a.name.split('.')[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                mods.add(node.module.split('.')[0])
    return mods


TUTORIALS = sorted((ROOT / 'nbs' / 'tutorials').glob('*.ipynb'))


def test_declared_for_extra_expands_self_references():
    d = declared_for_extra('all')
    assert {'pandas', 'sentence-transformers', 'rensa', 'plotly', 'jupyterlab', 'fastcore'} <= d and 'nbdev' not in d
    assert 'nbdev' in declared_for_extra('dev')


@pytest.mark.parametrize('nb', TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_imports_are_declared_by_the_all_extra(nb):
    import importlib.metadata as md

    dists, declared = md.packages_distributions(), declared_for_extra('all')
    missing = {}
    local = {f.stem for f in (ROOT / 'benchmarks').glob('*.py')}  # the repo's benchmark scripts a tutorial puts on sys.path (ablation)
    for mod in sorted(notebook_imports(nb) - set(sys.stdlib_module_names) - {'synthbench'} - local):
        names = {_dist_name(d) for d in dists.get(mod, [])}
        assert names, f"{nb.name}: imports {mod!r}, which no installed distribution provides"
        if not names & declared:
            missing[mod] = sorted(names)
    assert not missing, (
        f"{nb.name} imports {missing} (module: distributions), not declared by `pip install -e \".[all]\"`: add them to the [all] extra in pyproject.toml"
    )


# ---------- stored outputs: tools/check_outputs.py executes and checks the tutorials; nbdev-test in .ci/run skips exactly those ----------


def _check_outputs():
    sys.path.insert(0, str(ROOT / 'tools'))
    try:
        import check_outputs
    finally:
        sys.path.remove(str(ROOT / 'tools'))
    return check_outputs


def test_tutorials_with_stored_outputs_are_checked():
    co = _check_outputs()
    checked = {co.nb_path(n).resolve() for n in co.OUTPUT_NOTEBOOKS}
    assert all(p.is_file() for p in checked), sorted(str(p) for p in checked if not p.is_file())
    flags = ('#| slow', '#| notest')
    for nb in TUTORIALS:
        cells = [c for c in json.loads(nb.read_text(encoding='utf-8'))['cells'] if c['cell_type'] == 'code']
        stored = [c for c in cells if c.get('outputs') and not any(f in ''.join(c['source']) for f in flags)]
        if stored:
            assert nb.resolve() in checked, (
                f"{nb.name} stores outputs but is not in tools/check_outputs.py OUTPUT_NOTEBOOKS: nothing checks they are current"
            )
    assert {'task_api', 'support_tickets', 'grounded_policy', 'audit_existing', 'ablation'} <= {
        p.stem for p in checked if p.parent.name == 'tutorials'
    }


def test_nbdev_test_skips_exactly_the_checked_notebooks():
    "The regex .ci/run gives `nbdev-test --skip-file-re` (matched against file names) skips the notebooks check_outputs executes, and no other."
    co = _check_outputs()
    ci = (ROOT / '.ci' / 'run').read_text(encoding='utf-8')
    assert "c.skip_names()" in ci and '--skip-file-re "^($OUT_NBS)\\.ipynb$"' in ci
    rx = re.compile(f"^({'|'.join(co.skip_names())})\\.ipynb$")
    every = [p for p in (ROOT / 'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts]
    skipped = {p.resolve() for p in every if rx.search(p.name)}
    assert skipped == {co.nb_path(n).resolve() for n in co.OUTPUT_NOTEBOOKS}
