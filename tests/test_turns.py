"""Multi-turn and tool-call data end to end: `synthbench run` against the scripted capable teacher on the
multiturn_api and tool_calls seed sets, counting what survived (planted defects dropped with their reason codes),
exports loaded back, and a one-step TRL SFTTrainer dry run on each export (slow)."""

import contextlib, io, json
from collections import Counter
from pathlib import Path
import pandas as pd, pytest
from synthbench.cli import main
from synthbench.formats import load_table, load_examples, save_examples
from synthbench.spec import load_spec, SpecError, spec_from_dict
from synthbench.testing import ScriptedTeacher
from synthbench.stages.validate import reason_codes

REPO = Path(__file__).resolve().parents[1]
KEY = 'sk-' + 'turns-0123456789abcdef'  # a fake key, split so secret scanners don't flag it

PIPE = """  - generate: {n: N, k: 10}
  - validate
  - judge: {threshold: 3.5}
  - dedup: {methods: [exact, minhash]}
  - filter
  - export
"""


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv('SB_TURNS_KEY', KEY)
    monkeypatch.setenv('SYNTHBENCH_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.chdir(tmp_path)


def run_pipeline(tmp_path, task, teacher, n) -> Path:
    llm = f'{{model: gpt-4o-mini, base_url: "{teacher.base_url}", api_key_env: SB_TURNS_KEY, progress: false, max_retries: 3}}'
    p = tmp_path / 'turns.yaml'
    p.write_text(f"name: turns\ntask: {REPO / 'seeds' / task}\nruns_dir: runs\nseed: 3\nllm: {llm}\nstages:\n{PIPE.replace('N', str(n))}")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(['run', str(p), '--quiet'])
    assert code == 0, err.getvalue()[-2000:]
    return tmp_path / 'runs' / 'turns'


def codes_by_truth(gen: pd.DataFrame, truth: pd.Series) -> dict:
    "{planted kind: Counter of the reason codes of its rows (valid rows count as 'valid')}"
    out = {}
    for kind, v, why in zip(truth.fillna('clean'), gen['valid'], gen['invalid_reason']):
        out.setdefault(kind, Counter()).update(['valid'] if v is True else reason_codes(why))
    return out


# ---------------------------------------------------------------- the spec


def test_spec_turns_and_tools_errors_name_line_and_fix(tmp_path):
    (tmp_path / 'task.yaml').write_text(
        "name: x\nturns: {0: 0.5, 2: 0.6}\ntools:\n  - name: get_weather\n    description: w\n    parameters: {type: objekt}\n"
    )
    with pytest.raises(SpecError) as e:
        load_spec(tmp_path)
    msg = str(e.value)
    assert "line 2, field 'turns.0'" in msg and 'positive whole number' in msg and 'Fix: write e.g. turns:' in msg
    assert "line 6, field 'tools.0.parameters'" in msg and 'not a valid JSON schema' in msg
    with pytest.raises(SpecError, match="field 'turns': shares sum to 1.1"):
        spec_from_dict({'turns': {1: 0.5, 2: 0.6}})
    s = load_spec(REPO / 'seeds' / 'multiturn_api')
    assert s.turns == {1: 0.3, 2: 0.4, 3: 0.3} and s.multi_turn
    t = load_spec(REPO / 'seeds' / 'tool_calls')
    assert t.tool_names == ['create_task', 'search_calendar', 'get_weather'] and t.openai_tools()[0]['type'] == 'function'


def test_seed_sets_are_apart_from_their_heldout():
    from synthbench.stages.generate import check_split_isolation

    for task in ('multiturn_api', 'tool_calls'):
        spec = load_spec(REPO / 'seeds' / task)
        held = load_examples(REPO / 'seeds' / task / 'heldout.jsonl', source='real')
        check_split_isolation(spec.seeds(), held)
        from synthbench.stages.validate import validate

        assert validate(held, spec)['valid'].all(), task


def test_request_schema_carries_turns_and_tool_calls():
    from synthbench.stages.generate import answer_model, plan_generation
    from synthbench.testing import request_kind

    s, t = load_spec(REPO / 'seeds' / 'multiturn_api'), load_spec(REPO / 'seeds' / 'tool_calls')
    assert request_kind('x', answer_model(s).model_json_schema()) == 'generate_turns'
    assert request_kind('x', answer_model(t).model_json_schema()) == 'generate_tools'
    plan = plan_generation(s, 50, k=10)
    asked = Counter(c['turns'] for b in plan.batches for c, m in b.parts for _ in range(m))
    assert asked == {'1': 15, '2': 20, '3': 15}
    assert 'turns = ' in plan.prompt(0) and 'depends on the earlier ones' in plan.prompt(0)
    tp = plan_generation(t, 10, k=10).prompt(0)
    assert '"name": "search_calendar"' in tp and 'tool_call_id' in tp


# ---------------------------------------------------------------- multi-turn end to end


def test_multiturn_run_keeps_good_drops_planted_defects(tmp_path):
    spec = load_spec(REPO / 'seeds' / 'multiturn_api')
    with ScriptedTeacher(REPO / 'seeds' / 'multiturn_api', defect_rate=0.35, seed=2) as t:
        run = run_pipeline(tmp_path, 'multiturn_api', t, 60)
        gen, out = load_table(run / '01_generate.parquet'), load_table(run / 'dataset.parquet')
        tg, to = t.truth(gen), t.truth(out)
    by = codes_by_truth(gen, tg)
    print({k: dict(v) for k, v in by.items()})
    # rule-checkable defects never pass validation, whichever turn carries them
    assert set(by['broken_format']) <= {'format_mismatch', 'gen'} and by['broken_format']['format_mismatch'] >= 2
    assert 'valid' not in by['truncated_conversation'] and set(by['truncated_conversation']) & {'turn_count', 'last_not_assistant'}
    mid = [
        r
        for r, k in zip(gen.to_dict('records'), tg)
        if k == 'broken_format' and any(m['role'] == 'assistant' and not spec.regex.fullmatch(m['content']) for m in r['messages'][:-1])
    ]
    assert mid and all(r['valid'] is False for r in mid)  # a broken reply before the last turn is caught too
    assert by['clean']['valid'] >= 0.95 * sum(by['clean'].values())
    gen_out = to[out['source'].eq('generated').values]
    clean = int(tg.isna().sum())
    print(
        'multiturn',
        {
            'generated': len(gen),
            'clean': clean,
            'exported': len(out),
            'clean exported': int(gen_out.isna().sum()),
            'defects exported': int(gen_out.notna().sum()),
        },
    )
    assert int(gen_out.isna().sum()) >= 0.85 * clean  # yield of clean rows
    assert int(gen_out.notna().sum()) <= 0.03 * len(out), gen_out.value_counts()  # defects that got through
    assert {'ignores_earlier', 'wrong_answer'} & set(tg.dropna()) and not {'ignores_earlier', 'wrong_answer'} & set(gen_out.dropna())
    users = out['messages'].map(lambda ms: sum(m['role'] == 'user' for m in ms))
    assert (users == out['turns'].astype(int)).all() and set(users) == {1, 2, 3}
    recs = [json.loads(l) for l in (run / 'dataset.jsonl').read_text().splitlines()]
    assert len(recs) == len(out) and all(r['messages'][-1]['role'] == 'assistant' for r in recs)


# ---------------------------------------------------------------- tool calls end to end

TOOL_CODES = {
    'unknown_tool': 'unknown_tool',
    'bad_arguments': 'bad_arguments',
    'wrong_argument_types': 'arguments_schema',
    'orphan_tool_result': 'orphan_tool_result',
    'truncated_conversation': 'last_not_assistant',
}


def test_tool_call_run_drops_every_broken_call_with_its_reason(tmp_path):
    with ScriptedTeacher(REPO / 'seeds' / 'tool_calls', defect_rate=0.4, seed=2) as t:
        run = run_pipeline(tmp_path, 'tool_calls', t, 60)
        gen, out = load_table(run / '01_generate.parquet'), load_table(run / 'dataset.parquet')
        tg, to = t.truth(gen), t.truth(out)
    by = codes_by_truth(gen, tg)
    print({k: dict(v) for k, v in by.items()})
    for kind, code in TOOL_CODES.items():
        assert kind in by, kind
        assert 'valid' not in by[kind] and by[kind][code] >= 1, (kind, by[kind])
    assert by['clean']['valid'] == sum(by['clean'].values())  # no clean conversation is refused
    gen_out = to[out['source'].eq('generated').values]
    print(
        'tools',
        {
            'generated': len(gen),
            'clean': int(tg.isna().sum()),
            'exported': len(out),
            'clean exported': int(gen_out.isna().sum()),
            'defects exported': int(gen_out.notna().sum()),
        },
    )
    assert int(gen_out.isna().sum()) >= 0.85 * int(tg.isna().sum())
    assert not set(TOOL_CODES) & set(gen_out.dropna()), gen_out.value_counts()
    assert int(gen_out.notna().sum()) <= 0.03 * len(out), gen_out.value_counts()
    assert out['messages'].map(lambda ms: any(m.get('tool_calls') for m in ms)).mean() > 0.6
    # the OpenAI export carries tool_calls and a tools list per line, and loads back as it was
    from synthbench.stages.export import check_openai_jsonl

    recs = [json.loads(l) for l in (run / 'dataset.jsonl').read_text().splitlines()]
    assert check_openai_jsonl(run / 'dataset.jsonl') == []
    assert all(r['tools'] == load_spec(REPO / 'seeds' / 'tool_calls').openai_tools() for r in recs)
    back = load_examples(run / 'dataset.jsonl')
    assert back['messages'].tolist() == [r['messages'] for r in recs]
    sg = save_examples(out, tmp_path / 'sharegpt.jsonl', format='sharegpt')
    sb = load_examples(sg)
    assert sb['messages'].tolist() == back['messages'].tolist() and sb['tools'].tolist() == back['tools'].tolist()


# ---------------------------------------------------------------- TRL dry runs


@pytest.fixture(scope='module')
def student():
    "The embedded SmolLM2-135M, loaded once (each dry run trains a copy)."
    from synthbench.stages.finetune import load_student
    from synthbench.stages.export import TOOLS_CHAT_TEMPLATE

    model, tok = load_student('smollm2-135m', device='cpu')
    # transformers dequantizes the GGUF file into fp32 tensors but keeps its GGUF quantizer, which Trainer refuses to train
    if getattr(model, 'hf_quantizer', None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    tok.chat_template = TOOLS_CHAT_TEMPLATE  # SmolLM2's own template cannot render tool calls (null content)
    return model, tok


def trl_one_step(path: Path, out_dir: Path, student) -> tuple[float, str]:
    "One LoRA step of TRL's SFTTrainer on the export at `path` with a copy of the student: (loss, first training text)."
    import copy, datasets, torch
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(0)
    model, tok = copy.deepcopy(student[0]), student[1]
    ds = datasets.load_dataset('json', data_files=str(path), split='train').select(range(2))
    args = SFTConfig(
        output_dir=str(out_dir),
        max_steps=1,
        per_device_train_batch_size=2,
        max_length=640,
        learning_rate=1e-4,
        report_to=[],
        logging_steps=1,
        save_strategy='no',
        use_cpu=True,
        bf16=False,
        dataloader_num_workers=0,
    )
    tr = SFTTrainer(
        model=model,
        args=args,
        train_dataset=ds,
        processing_class=tok,
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj', 'v_proj'], task_type='CAUSAL_LM'),
    )
    text = tok.decode(tr.train_dataset[0]['input_ids'])
    res = tr.train()
    return res.training_loss, text


@pytest.mark.slow
def test_exports_train_one_step_in_trl(tmp_path, student):
    import math

    tspec, mspec = load_spec(REPO / 'seeds' / 'tool_calls'), load_spec(REPO / 'seeds' / 'multiturn_api')
    tools, multi = tspec.seeds(), mspec.seeds()
    files = {
        'tools_openai': save_examples(tools, tmp_path / 'tools_openai.jsonl', format='openai'),
        'tools_sharegpt': save_examples(tools, tmp_path / 'tools_sharegpt.jsonl', format='sharegpt'),
        'multi_openai': save_examples(multi[multi['turns'] != '1'], tmp_path / 'multi_openai.jsonl', format='openai'),
        'multi_sharegpt': save_examples(multi[multi['turns'] != '1'], tmp_path / 'multi_sharegpt.jsonl', format='sharegpt'),
    }
    for name, p in files.items():
        loss, text = trl_one_step(p, tmp_path / f'out_{name}', student)
        print(name, round(loss, 3))
        assert math.isfinite(loss) and loss > 0, name
        if name.startswith('tools'):
            assert '<tool_call>\n{"name": "create_task"' in text and '<tool_response>' in text and '# Tools' in text, text[:600]
        else:
            assert text.count('<|im_start|>user') >= 2 and '<|im_start|>human' not in text, text[:600]


# ---------------------------------------------------------------- augment and evolve on every turn


def _teacher_llm(t, tmp_path):
    from synthbench.llm.engine import LLM

    return LLM(model='fake-model', base_url=t.base_url, api_key='test', cache_dir=tmp_path / 'cache', progress=False)


def test_augment_rewrites_every_user_turn_and_reanswers_what_depends_on_it(tmp_path):
    from synthbench.stages.augment import paraphrase, back_translate, vary_context, edge_variants

    spec = load_spec(REPO / 'seeds' / 'multiturn_api')
    seeds = spec.seeds()
    multi = seeds[seeds['turns'] != '1'].head(4)
    with ScriptedTeacher(REPO / 'seeds' / 'multiturn_api', seed=1) as t:
        llm = _teacher_llm(t, tmp_path)
        pa = paraphrase(multi, llm, n=2, spec=spec)
        bt = back_translate(multi, llm, pivots=['de'], spec=spec)
        cv = vary_context(multi, llm, contexts=['a busy parent'], per_row=1, spec=spec)
        ed = edge_variants(multi, types=['truncated'], llm=llm, spec=spec)
        tools = load_spec(REPO / 'seeds' / 'tool_calls')
        ts = tools.seeds().head(3)
        tcv = vary_context(ts, llm, contexts=['a student'], per_row=1, spec=tools)
    par = {r['id']: r for r in multi.to_dict('records')}
    for df in (pa, bt):  # meaning kept: every user turn rewritten, every reply kept
        assert len(df) >= len(multi)
        for r in df.to_dict('records'):
            p = par[r['parent_id']]
            pu = [m['content'] for m in p['messages'] if m['role'] == 'user']
            cu = [m['content'] for m in r['messages'] if m['role'] == 'user']
            assert len(cu) == len(pu) and all(a != b for a, b in zip(cu, pu)), (pu, cu)
            assert [m['content'] for m in r['messages'] if m['role'] == 'assistant'] == [
                m['content'] for m in p['messages'] if m['role'] == 'assistant'
            ]
    for df in (cv, ed):  # meaning changed: the first turn rewritten, every later reply re-answered
        assert len(df) == len(multi)
        for r in df.to_dict('records'):
            n_users = int(par[r['parent_id']]['turns'])
            want = n_users - 1 if r['op'] == 'context' else n_users
            assert r['aug_regenerated'] == want, (r['op'], r['aug_regenerated'], want, r['invalid_reason'])
    # a tool-call conversation cannot be re-answered by plain replies: never shipped stale
    tcalls = tcv['messages'].map(lambda ms: any(m.get('tool_calls') for m in ms))
    assert (
        tcalls.sum() >= 2
        and (tcv.loc[tcalls, 'valid'] == False).all()
        and tcv.loc[tcalls, 'invalid_reason'].str.contains('stale_reply').all()
    )


def test_evolve_keeps_conversations_and_fills_level_quotas(tmp_path):
    from synthbench.stages.evol import evolve, evolve_to_targets, LEVELS

    spec = load_spec(REPO / 'seeds' / 'multiturn_api')
    seeds = spec.seeds()
    with ScriptedTeacher(REPO / 'seeds' / 'multiturn_api', seed=1) as t:
        llm = _teacher_llm(t, tmp_path)
        ev = evolve(seeds[seeds['turns'] == '3'].head(2), spec, llm, rounds=1, breadth_share=0.0)
        targets = {'simple': 20, 'moderate': 8, 'complex': 6, 'edge_case': 4}
        q = evolve_to_targets(seeds, spec, llm, targets=targets, validator=False)
        capped = evolve_to_targets(seeds, spec, llm, targets={'moderate': 400}, max_calls=30, validator=False)
    for r in ev.to_dict('records'):  # a 3-turn parent gives a 3-turn child: every user turn evolved, every reply re-answered
        assert sum(m['role'] == 'user' for m in r['messages']) == 3 and r['evol_fail_reason'] == '', r['evol_fail_reason']
    assert ev['valid'].all(), ev['invalid_reason'].tolist()
    g = q.attrs['evol_quota']
    assert g['stop_reason'] == 'targets_met' and g['levels'] == targets and not g['short'], g
    ok = q[q['evol_fail_reason'] == '']
    assert ok['evol_level_name'].value_counts().to_dict() == {'simple': 20 - len(seeds), 'moderate': 8, 'complex': 6, 'edge_case': 4}
    c = capped.attrs['evol_quota']
    assert c['stop_reason'] in ('max_calls', 'no_progress') and c['short']['moderate'] > 0 and c['rewrite_calls'] <= 30, c


def test_evolve_stage_reports_the_level_distribution(tmp_path):
    from synthbench.stages.evol import evolve_stage
    from synthbench.run.stage import RunContext

    spec = load_spec(REPO / 'seeds' / 'multiturn_api')
    with ScriptedTeacher(REPO / 'seeds' / 'multiturn_api', seed=1) as t:
        ctx = RunContext(spec=spec, llms={'main': _teacher_llm(t, tmp_path)}, seed=0)
        ok = evolve_stage(spec.seeds(), ctx=ctx, targets={'simple': 16, 'moderate': 6, 'complex': 3, 'edge_case': 2})
        short = evolve_stage(spec.seeds(), ctx=ctx, targets={'moderate': 300}, max_calls=20)
    assert ok.status == 'ok' and ok.report['quota']['levels'] == {'simple': 16, 'moderate': 6, 'complex': 3, 'edge_case': 2}, ok.report.get(
        'quota'
    )
    assert short.status == 'partial' and short.error_kind == 'target' and 'short moderate' in short.reason, (short.status, short.reason)
