"Preference pairs end to end against the scripted teacher: pairs, drop reasons, truth of chosen, position swap, failed calls, TRL DPO export."

import json, math, warnings
import pandas as pd
import pytest
from synthbench.core import seeds_path
from synthbench.llm.engine import LLM
from synthbench.spec import load_spec
from synthbench.run.stage import RunContext
from synthbench.testing import ScriptedTeacher
from synthbench.stages.prefs import DROP_REASONS, export_dpo, preference_pairs, prefs_stage

SPEC = load_spec(seeds_path('task_api'))


def _llm(t, tmp_path, model, **kw):
    return LLM(model=model, base_url=t.base_url, api_key='k', cache_dir=tmp_path / 'cache', progress=False, **kw)


@pytest.fixture(scope='module')
def table():
    "The task_api seeds: the prompts of the smaller tests."
    return SPEC.seeds()


def _truth_rate(t, pairs):
    ok = [(t.sample_truth(p['prompt'], p['chosen']), t.sample_truth(p['prompt'], p['rejected'])) for p in pairs.to_dict('records')]
    return sum(c is None and r not in (None, 'unknown') for c, r in ok) / max(1, len(ok)), ok


def test_pairs_end_to_end_pointwise(tmp_path):
    from synthbench.stages.generate import generate

    with ScriptedTeacher('task_api', defect_rate=0.2, seed=3) as t:
        gen = generate(SPEC, 40, _llm(t, tmp_path, 'gen'), k=10, max_rounds=2)  # 40 generated rows (their defects included) + the seeds
        df = pd.concat([SPEC.seeds(), gen], ignore_index=True)
        plain0 = t.stats['by_kind']['plain']
        res = preference_pairs(df, _llm(t, tmp_path, 'teacher-gen'), SPEC, judge_llm=_llm(t, tmp_path, 'teacher-judge'))
        n = res.report['prompts']
        assert n >= 50 and t.stats['by_kind']['plain'] - plain0 == 4 * n  # 4 candidates per prompt, one call each
        assert len(res.pairs) + sum(res.report['dropped'].values()) == n  # every prompt accounted for
        assert set(res.report['dropped']) <= set(DROP_REASONS) and 'failed_call' not in res.report['dropped']
        assert len(res.pairs) >= 0.6 * n, res.report['dropped']  # most prompts had a flawed sample at 1.0/1.2
        assert res.report['dropped'].get('tie', 0) >= 1  # some prompts got 4 right replies
        rate, ok = _truth_rate(t, res.pairs)
        assert rate >= 0.9, ok  # chosen is the right reply, rejected a flawed one
        assert (res.pairs['margin'] >= 1.0).all() and (res.pairs['chosen_temperature'] <= res.pairs['rejected_temperature']).mean() > 0.8
        lb = res.report['length_bias']
        share = float((res.pairs['chosen'].str.len() > res.pairs['rejected'].str.len()).mean())
        assert lb['share_chosen_longer'] == round(share, 3) and lb['mean_length_ratio'] > 0 and lb['score_length']['n'] == 4 * n
        # a re-run is answered from the cache: no new requests, the same pairs
        before = t.stats['requests']
        again = preference_pairs(df, _llm(t, tmp_path, 'teacher-gen'), SPEC, judge_llm=_llm(t, tmp_path, 'teacher-judge'))
        assert t.stats['requests'] == before and again.pairs['chosen'].tolist() == res.pairs['chosen'].tolist()
        # a higher bar keeps fewer pairs, and says so
        strict = preference_pairs(df, _llm(t, tmp_path, 'teacher-gen'), SPEC, judge_llm=_llm(t, tmp_path, 'teacher-judge'), min_margin=1.6)
        assert len(strict.pairs) < len(res.pairs) and strict.report['dropped'].get('low_margin', 0) == len(res.pairs) - len(strict.pairs)


def test_pairwise_position_swap_drops_inconsistent(table, tmp_path):
    seeds = table
    with ScriptedTeacher('task_api', seed=3) as t:
        fair = preference_pairs(seeds, _llm(t, tmp_path, 'g'), SPEC, judge_llm=_llm(t, tmp_path, 'j'), pairwise=True)
        assert fair.report['inconsistent_comparisons'] == 0 and 'inconsistent' not in fair.report['dropped']
        assert fair.report['comparisons'] > 0 and len(fair.pairs) >= 10
        t.position_bias = 0.4
        biased = preference_pairs(seeds, _llm(t, tmp_path / 'b', 'g'), SPEC, judge_llm=_llm(t, tmp_path / 'b', 'j'), pairwise=True)
    inc = biased.report['inconsistent_comparisons']
    assert 0.1 * biased.report['comparisons'] < inc < 0.7 * biased.report['comparisons']
    assert biased.report['dropped'].get('inconsistent', 0) >= 1 and any('position bias' in f for f in biased.findings)
    assert len(biased.pairs) < len(fair.pairs)
    rate, ok = _truth_rate(t, biased.pairs)
    assert rate >= 0.9, ok  # what survives the swap check is still right


def test_failed_candidate_calls_are_failed_not_low_margin(table, tmp_path):
    seeds = table
    with ScriptedTeacher('task_api', fail='plain') as bad, ScriptedTeacher('task_api') as good:
        with pytest.warns(UserWarning, match='call\\(s\\) failed'):
            res = preference_pairs(seeds, _llm(bad, tmp_path, 'g', max_retries=0), SPEC, judge_llm=_llm(good, tmp_path, 'j'))
        assert len(res.pairs) == 0 and res.report['dropped'] == {'failed_call': len(seeds)}
        assert res.report['failed_calls']['candidate'] == 4 * len(seeds) and res.report['failed_calls']['by_kind'] == {
            'server': 4 * len(seeds)
        }
        assert good.stats['by_kind']['judge'] == 0  # nothing to judge
        st = prefs_stage(
            seeds,
            ctx=RunContext(
                spec=SPEC,
                llms={'main': _llm(bad, tmp_path, 'g', max_retries=0), 'judge': _llm(good, tmp_path, 'j')},
                run_dir=tmp_path / 'run',
                log=lambda s: None,
            ),
        )
        assert (st.status, st.error_kind) == ('failed', 'server') and st.n_dropped == len(seeds) and 'dpo' not in st.files
    # some calls fail (HTTP 500 on a share of requests, no retries): those prompts are failed_call, the rest judged as usual
    with ScriptedTeacher('task_api', faults='500=0.15', seed=1) as t:
        with pytest.warns(UserWarning, match='call\\(s\\) failed'):
            res = preference_pairs(
                seeds, _llm(t, tmp_path / 'f', 'g', max_retries=0), SPEC, judge_llm=_llm(t, tmp_path / 'f', 'j', max_retries=0)
            )
    failed_prompts = {o['prompt_id'] for o in res.outcomes if o['error']}
    assert 0 < len(failed_prompts) < len(seeds)
    assert res.report['dropped']['failed_call'] == len(failed_prompts)
    assert set(res.dropped.loc[res.dropped['drop_reason'] == 'failed_call', 'prompt_id']) == failed_prompts
    assert not set(res.pairs['prompt_id']) & failed_prompts
    assert set(res.dropped.loc[res.dropped['drop_reason'] == 'failed_call', 'error_kind']) == {'server'}
    # the judge failing is a failed call too
    with ScriptedTeacher('task_api', fail='judge') as t:
        with pytest.warns(UserWarning, match='call\\(s\\) failed'):
            res = preference_pairs(seeds.head(4), _llm(t, tmp_path / 'j', 'g'), SPEC, judge_llm=_llm(t, tmp_path / 'j', 'j', max_retries=0))
    assert res.report['dropped'] == {'failed_call': 4} and res.report['failed_calls']['judge'] == 16


def test_same_family_judge_is_a_finding(tmp_path):
    with ScriptedTeacher('task_api') as t:
        with pytest.warns(UserWarning, match=r"same model family \(openai gpt\)"):
            res = preference_pairs(SPEC.seeds().head(3), _llm(t, tmp_path, 'gpt-4o-mini'), SPEC, judge_llm=_llm(t, tmp_path, 'gpt-4o'))
        assert any('same model family' in f for f in res.findings)
        with warnings.catch_warnings():
            warnings.simplefilter('error')  # a judge of another family: no warning
            preference_pairs(SPEC.seeds().head(3), _llm(t, tmp_path, 'gpt-4o-mini'), SPEC, judge_llm=_llm(t, tmp_path, 'claude-3-5-sonnet'))


def test_models_take_turns(tmp_path):
    with ScriptedTeacher('task_api') as t:
        res = preference_pairs(
            SPEC.seeds().head(4),
            _llm(t, tmp_path, 'gen-a'),
            SPEC,
            judge_llm=_llm(t, tmp_path, 'judge'),
            models=['gen-a', 'gen-b'],
            temperatures=(1.0, 1.2),
        )
    assert [(p['model'], p['temperature']) for p in res.report['plan']] == [('gen-a', 1.0), ('gen-b', 1.0), ('gen-a', 1.2), ('gen-b', 1.2)]
    assert set(res.candidates['model']) == {'gen-a', 'gen-b'} and res.report['generators'] == ['gen-a', 'gen-b']


def _pairs(tmp_path):
    with ScriptedTeacher('task_api') as t:
        return preference_pairs(SPEC.seeds(), _llm(t, tmp_path, 'g'), SPEC, judge_llm=_llm(t, tmp_path, 'j'))


def test_export_loads_with_datasets(tmp_path):
    from datasets import load_dataset

    res = _pairs(tmp_path)
    conv = load_dataset('json', data_files=str(export_dpo(res, tmp_path / 'conv.jsonl')), split='train')
    assert len(conv) == len(res.pairs) and {'prompt', 'chosen', 'rejected', 'margin', 'chosen_score'} <= set(conv.column_names)
    r = conv[0]
    assert r['prompt'][0]['role'] == 'system' and r['prompt'][-1]['role'] == 'user' and r['chosen'][0]['role'] == 'assistant'
    assert r['margin'] == pytest.approx(r['chosen_score'] - r['rejected_score'], abs=1e-3)
    std = load_dataset('json', data_files=str(export_dpo(res, tmp_path / 'std.jsonl', format='standard', extra=False)), split='train')
    assert std.column_names == ['prompt', 'chosen', 'rejected'] and isinstance(std[0]['prompt'], str)
    with pytest.raises(ValueError, match='must end in .jsonl'):
        export_dpo(res, tmp_path / 'x.csv')


def test_stage_registered_and_checked(tmp_path):
    from synthbench.run.stage import check_params
    from synthbench.run.workbench import stage_function

    fn = stage_function('prefs')
    assert fn is prefs_stage
    assert 'min_margin' in check_params(fn, {'min_marign': 1})[0][1]
    with ScriptedTeacher('task_api') as t:
        logs = []
        st = fn(
            SPEC.seeds(),
            ctx=RunContext(spec=SPEC, llms={'main': _llm(t, tmp_path, 'g')}, run_dir=tmp_path / 'run', log=logs.append),
            pairwise=True,
        )
    assert st.status == 'ok' and len(st.table) > 0 and (tmp_path / 'run' / 'prefs_dpo.jsonl').exists()
    assert any("no LLM named 'judge'" in l for l in logs)  # the generator judged itself: said so
    assert st.table['messages'].map(lambda m: m[-1]['role'] == 'assistant').all() and st.table['prefs_margin'].min() >= 1.0


@pytest.mark.slow
def test_dpo_trainer_one_step_on_the_export(tmp_path):
    "The export trains: one DPOTrainer step on CPU with the embedded SmolLM2-135M student and a LoRA adapter."
    from datasets import load_dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer
    from synthbench.stages.finetune import load_student

    res = _pairs(tmp_path)
    data = load_dataset('json', data_files=str(export_dpo(res.pairs.head(4), tmp_path / 'dpo.jsonl', extra=False)), split='train')
    model, tok = load_student(device='cpu')
    # transformers dequantizes the GGUF file to fp32 (what finetune_local trains) but leaves its GGUF quantizer on the model, which
    # Trainer refuses to train; the weights are plain fp32, so drop the stale marker
    model.hf_quantizer, model.is_quantized = None, False
    args = DPOConfig(
        output_dir=str(tmp_path / 'out'),
        max_steps=1,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        max_length=384,
        learning_rate=1e-4,
        beta=0.1,
        logging_steps=1,
        save_strategy='no',
        report_to='none',
        use_cpu=True,
        bf16=True,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        seed=0,
    )
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=['q_proj', 'v_proj'], task_type='CAUSAL_LM')
    trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tok, peft_config=lora)
    out = trainer.train()
    assert out.global_step == 1 and math.isfinite(out.training_loss)
    logged = [h for h in trainer.state.log_history if 'loss' in h]
    assert logged and abs(logged[0]['loss'] - math.log(2)) < 0.05  # step 1: policy == reference, so the DPO loss is log 2
    assert any('rewards/margins' in k or 'rewards/chosen' in k for k in logged[0])


def test_prefs_in_a_pipeline_run(tmp_path):
    "`prefs` as a pipeline stage: pairs as the stage table, prompts without a pair in the dropped file, the DPO file beside them."
    from synthbench.run.workbench import run_pipeline

    with ScriptedTeacher('task_api') as t:
        cfg = {
            'name': 'p',
            'task': str(seeds_path('task_api')),
            'llm': {'model': 'teacher-gen', 'base_url': t.base_url, 'cache_dir': None},
            'llms': {'judge': {'model': 'teacher-judge', 'base_url': t.base_url, 'cache_dir': None}},
            'seed': 0,
            'stages': ['add_seeds', {'prefs': {'min_margin': 1.0}}, 'audit'],
        }
        run = run_pipeline(cfg, runs_dir=tmp_path, verbose=False)
    assert run.manifest['status'] == 'done'
    # the audit of the pairs reports their margins and length bias
    rep = json.loads((run.path / '03_audit.report.json').read_text())
    pp = rep['metrics']['preference_pairs']
    assert pp['pairs'] == len(pd.read_parquet(run.path / '02_prefs.parquet')) and pp['margin_min'] >= 1.0
    assert 0 <= pp['length_bias']['share_chosen_longer'] <= 1
    kept, gone = pd.read_parquet(run.path / '02_prefs.parquet'), pd.read_parquet(run.path / '02_prefs.dropped.parquet')
    dpo = [json.loads(l) for l in (run.path / 'prefs_dpo.jsonl').read_text().splitlines()]
    assert len(kept) == len(dpo) > 0 and len(kept) + len(gone) == 20 and set(gone['drop_reason']) <= set(DROP_REASONS)
    assert t.stats['by_kind']['plain'] == 80
