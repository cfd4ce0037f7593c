"Fine-tuning a student: training data, assistant-only labels, resumable local LoRA, OpenAI jobs on a loopback fake, GPU recipes, and the done-when test."

import datetime as dt, json, os, random, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
sys.path.insert(0, str(Path(__file__).parent))
from fake_finetune import FakeFinetuneServer
from synthbench.core import seeds_path, make_table
from synthbench.spec import load_spec
from synthbench.stages import finetune as ft

TASK = seeds_path('task_api')
SHORT = 'You are a task-manager API. Today is Monday 2025-01-13.'

# --- a simple generator of clean task_api rows (the scripted teacher, synthbench.testing, is used when it exists) ---
TODAY = dt.date(2025, 1, 13)
_TITLES = [
    'call the bank',
    'renew the lease',
    'order printer paper',
    'send the weekly report',
    'fix the bike',
    'book a haircut',
    'pay the phone bill',
    'write the blog post',
    'clean the fridge',
    'plan the offsite',
    'return the library books',
    'update the budget sheet',
    'email Priya about the demo',
    'buy a birthday card',
    'schedule the car service',
    'prepare the board slides',
    'water the garden',
    'review the contract',
    'backup the photos',
    'reply to the recruiter',
]
_DAYS = {
    'today': 0,
    'tomorrow': 1,
    'Wednesday': 2,
    'Thursday': 3,
    'Friday': 4,
    'Saturday': 5,
    'Sunday': 6,
    'next Monday': 7,
    'next Tuesday': 8,
    'next Friday': 11,
}


def _due(d):
    if d is None:
        return 'none'
    x = TODAY + dt.timedelta(days=d)
    return f"{x.isoformat()} ({x.strftime('%A')})"


def synthetic_task_rows(n: int = 300, seed: int = 0) -> pd.DataFrame:
    "Clean, on-format task_api chats (create, update, complete, delete, list, error) from templates."
    rng, rows = random.Random(seed), []
    for i in range(n):
        t = rng.choice(_TITLES)
        T = t[0].upper() + t[1:]
        kind = rng.choices(['create', 'update', 'complete', 'delete', 'list', 'error'], [30, 15, 15, 10, 15, 15])[0]
        pr = rng.choice(['low', 'medium', 'high', 'urgent'])
        day = rng.choice(list(_DAYS) + [None])
        if kind == 'create':
            u = rng.choice(['add a task to {t}', 'Please create a task: {t}', 'can you remind me to {t}', 'new task {t}'])
            u = u.format(t=t) + (f', due {day}' if day else '') + (f', {pr} priority' if pr != 'medium' else '')
            a = f"Created task: '{T}' | Priority: {pr} | Due: {_due(_DAYS[day] if day else None)}"
        elif kind == 'update':
            if day:
                u, a = f"move '{T}' to {day}", f"Updated task: '{T}' | Due: none -> {_due(_DAYS[day])}"
            else:
                u, a = f"make '{T}' {pr} priority", f"Updated task: '{T}' | Priority: medium -> {pr}"
        elif kind == 'complete':
            u, a = rng.choice(['I finished: {t}', 'mark {t} as done', 'done with {t}']).format(t=t), f"Completed task: '{T}'"
        elif kind == 'delete':
            u, a = rng.choice(['delete the task {t}', 'remove {t} from my list']).format(t=t), f"Deleted task: '{T}'"
        elif kind == 'list':
            k = rng.randint(0, 2)
            ts = rng.sample(_TITLES, k)
            u = rng.choice(["what's on my list?", 'show my tasks', 'list everything'])
            a = f'Tasks ({k}):' + (
                ' none'
                if not k
                else ''.join(f"\n{j + 1}. '{x[0].upper() + x[1:]}' | Priority: medium | Due: none" for j, x in enumerate(ts))
            )
        else:
            bad = rng.choice(['critical', 'super-high', 'asap'])
            u, a = f"set '{T}' to {bad} priority", f"Error: '{bad}' is not a priority. Use one of: low, medium, high, urgent."
        rows.append(
            {'messages': [{'role': 'user', 'content': u}, {'role': 'assistant', 'content': a}], 'category': kind, 'source': 'generated'}
        )
    return make_table(rows)


def teacher_rows(tmp_path, n: int = 300) -> pd.DataFrame:
    "What the pipeline keeps of `n` rows from the scripted capable teacher (20% planted defects), plus the seeds: the exported set."
    from synthbench.testing import ScriptedTeacher
    from synthbench.llm.engine import LLM
    from synthbench.run.workbench import run_pipeline

    with ScriptedTeacher(TASK, defect_rate=0.2, seed=2) as t:
        llm = LLM(model='gpt-4o-mini', base_url=t.base_url, api_key='sk-' + 'teacher', cache_dir=tmp_path / 'cache', progress=False)
        cfg = {
            'name': 'ft-data',
            'task': str(TASK),
            'seed': 0,
            'stages': [
                {'generate': {'n': n}},
                'validate',
                'judge',
                {'dedup': {'methods': ['exact', 'minhash']}},
                'filter',
                'add_seeds',
                {'export': {'format': 'openai'}},
            ],
        }
        run = run_pipeline(cfg, runs_dir=tmp_path / 'runs', llm=llm, verbose=False)
        assert run.ok, run.reason
        out = run.final  # generated rows carry the task's long system prompt: train with the short one the student is scored with
        return out.assign(messages=[[m for m in ms if m['role'] != 'system'] for ms in out['messages']])


def training_rows(n: int = 300) -> pd.DataFrame:
    "Seeds plus template rows (the teacher-free path, for the fast tests)."
    return pd.concat([load_spec(TASK).seeds(), synthetic_task_rows(n)], ignore_index=True)


def test_synthetic_rows_are_on_spec():
    from synthbench.stages.validate import validate

    v = validate(synthetic_task_rows(300), load_spec(TASK))
    assert v['valid'].all(), v.loc[~v['valid'].astype(bool), 'invalid_reason'].head().tolist()


# --- training data and labels ---
@pytest.fixture(scope='session')
def tok():
    return ft.load_tokenizer()


def test_training_table_reads_exports(tmp_path):
    from synthbench.formats import save_examples

    df = load_spec(TASK).seeds()
    save_examples(df, tmp_path / 'train.jsonl', format='openai')
    assert len(ft.training_table(tmp_path / 'train.jsonl')) == len(df)
    run = tmp_path / 'run'
    run.mkdir()
    from synthbench.formats import save_table

    save_table(df, run / 'dataset.parquet')
    assert len(ft.training_table(run)) == len(df)
    with pytest.raises((FileNotFoundError, ValueError), match='not found'):
        ft.training_table(tmp_path / 'nothing_here')


def test_labels_are_masked_outside_assistant_turns(tok):
    chat = [
        {'role': 'system', 'content': SHORT},
        {'role': 'user', 'content': 'add buy milk'},
        {'role': 'assistant', 'content': "Created task: 'Buy milk' | Priority: medium | Due: none"},
        {'role': 'user', 'content': 'make it urgent'},
        {'role': 'assistant', 'content': "Updated task: 'Buy milk' | Priority: medium -> urgent"},
    ]
    f = ft.chat_features(chat, tok, max_len=512)
    assert len(f['input_ids']) == len(f['labels'])
    kept = [t for t, l in zip(f['input_ids'], f['labels']) if l != -100]
    assert tok.decode(kept) == (
        "Created task: 'Buy milk' | Priority: medium | Due: none<|im_end|>Updated task: 'Buy milk' | Priority: medium -> urgent<|im_end|>"
    )
    # every token of the system prompt, the user turns and the role headers is -100
    masked = tok.decode([t for t, l in zip(f['input_ids'], f['labels']) if l == -100])
    assert 'make it urgent' in masked and 'Today is Monday' in masked and 'Created task' not in masked
    assert all(l == -100 or l == t for t, l in zip(f['input_ids'], f['labels']))


def test_classification_rows_train_on_the_label(tok):
    m = ft.training_messages({'text': 'where is my parcel', 'label': 'shipping'}, 'Route tickets.')
    f = ft.chat_features(m, tok)
    assert tok.decode([t for t, l in zip(f['input_ids'], f['labels']) if l != -100]) == 'shipping<|im_end|>'


# --- local LoRA on a tiny random Llama (same tokenizer): fast enough for every test run ---
@pytest.fixture(scope='session')
def tiny_student(tmp_path_factory, tok):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    d = tmp_path_factory.mktemp('tiny_student')
    LlamaForCausalLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


def _settings(**kw):
    return ft.LoraSettings(
        **{
            'max_steps': 4,
            'batch_size': 4,
            'max_len': 64,
            'save_every': 2,
            'bf16': False,
            'lora_r': 4,
            'lora_alpha': 8,
            'system_prompt': SHORT,
            **kw,
        }
    )


def test_local_run_writes_adapter_and_report(tmp_path, tiny_student):
    r = ft.finetune(load_spec(TASK).seeds(), tiny_student, 'local', tmp_path, _settings(), progress=False)
    rep = json.loads((tmp_path / 'training_report.json').read_text())
    assert rep['steps'] == 4 and len(rep['loss_curve']) == 4 and rep['tokens_per_second'] > 0 and rep['seconds_per_step'] > 0
    assert rep['config']['lora_r'] == 4 and rep['resumed_from'] is None
    assert (tmp_path / 'adapter' / 'adapter_config.json').exists() and r.student == str(tmp_path / 'adapter')
    assert json.loads((tmp_path / 'adapter' / 'synthbench_base.json').read_text())['student'] == tiny_student
    model, _ = ft.load_student(str(tmp_path))  # the finetune folder loads as base + adapter
    assert type(model).__name__.startswith('PeftModel')


def test_killed_run_resumes_from_last_checkpoint(tmp_path, tiny_student):
    df = load_spec(TASK).seeds()
    whole = ft.finetune_local(df, tmp_path / 'whole', _settings(), tiny_student, progress=False)

    def kill(step, loss):
        if step == 3:
            raise KeyboardInterrupt  # dies after step 3; the last checkpoint is step 2

    with pytest.raises(KeyboardInterrupt):
        ft.finetune_local(df, tmp_path / 'cut', _settings(), tiny_student, progress=False, on_step=kill)
    assert ft._last_checkpoint(tmp_path / 'cut').name == 'step-2' and not (tmp_path / 'cut' / 'training_report.json').exists()
    again = ft.finetune_local(df, tmp_path / 'cut', _settings(), tiny_student, progress=False)
    assert again.report['resumed_from'] == 2 and again.report['steps_this_run'] == 2
    # the resumed run is the run that was not interrupted: same batches, same optimizer state, same losses
    assert again.report['loss_curve'] == pytest.approx(whole.report['loss_curve'], abs=1e-4)
    with pytest.raises(ValueError, match='other settings'):
        ft.finetune_local(df, tmp_path / 'cut', _settings(lr=5e-3), tiny_student, progress=False)


@pytest.mark.slow
def test_sigkilled_cli_run_resumes(tmp_path, tiny_student):
    from synthbench.formats import save_examples

    data = tmp_path / 'train.jsonl'
    save_examples(training_rows(200), data, format='openai')
    out = tmp_path / 'out'
    args = [
        str(data),
        '--backend',
        'local',
        '--student',
        tiny_student,
        '--out',
        str(out),
        '--steps',
        '400',
        '--save-every',
        '5',
        '--batch-size',
        '4',
        '--max-len',
        '64',
        '--lora-r',
        '4',
        '--fp32',
        '--system-prompt',
        SHORT,
    ]
    code = f'import sys; from synthbench.stages.finetune import cli_finetune; sys.exit(cli_finetune({args!r}))'
    env = {**os.environ, 'PYTHONPATH': str(Path(ft.__file__).parent.parent)}
    p = subprocess.Popen([sys.executable, '-c', code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while ft._last_checkpoint(out) is None and time.time() - t0 < 120 and p.poll() is None:
        time.sleep(0.2)
    p.kill()
    p.wait()
    ck = ft._last_checkpoint(out)
    assert ck is not None and not (out / 'training_report.json').exists()
    done = int(ck.name.split('-')[1])
    args[args.index('--steps') + 1] = '400'
    assert ft.cli_finetune(args) == 0
    rep = json.loads((out / 'training_report.json').read_text())
    assert rep['resumed_from'] == done and len(rep['loss_curve']) == 400


# --- OpenAI fine-tuning jobs against the loopback fake ---
def _oa(df, out, srv, **kw):
    kw.setdefault('cache_dir', Path(out) / 'ledger')  # the budget ledger (the LLM cache's SQLite) of this test, never ~/.cache
    return ft.finetune_openai(df, out, base_url=srv.base_url, api_key='test', poll_interval=0.01, system_prompt=SHORT, progress=False, **kw)


def test_openai_job_runs_to_success(tmp_path):
    with FakeFinetuneServer(polls_to_finish=4) as srv:
        r = _oa(load_spec(TASK).seeds(), tmp_path, srv, epochs=2)
        job = json.loads((tmp_path / 'job.json').read_text())
        assert r.report['status'] == job['status'] == 'succeeded' and job['fine_tuned_model'].startswith('ft:gpt-4o-mini')
        assert r.student == job['fine_tuned_model'] and srv.jobs_created == 1 and srv.files_created == 1
        assert srv.polls[job['job_id']] == 4 and job['estimate']['usd'] > 0
        from synthbench.stages.export import check_openai_jsonl

        assert check_openai_jsonl(tmp_path / 'train.jsonl') == []  # the uploaded file passes OpenAI's format checks


def test_openai_killed_run_polls_the_same_job(tmp_path):
    with FakeFinetuneServer(polls_to_finish=5) as srv:
        first = _oa(load_spec(TASK).seeds(), tmp_path, srv, timeout=0)  # stops after one poll, as if killed
        assert first.report['status'] == 'validating_files'
        again = _oa(pd.DataFrame(), tmp_path, srv)  # the re-run needs no data: it polls the job
        assert again.report['status'] == 'succeeded' and again.report['job_id'] == first.report['job_id']
        assert srv.jobs_created == 1 and srv.files_created == 1


def test_openai_job_created_before_the_kill_is_found(tmp_path):
    import openai

    with FakeFinetuneServer() as srv:
        c = openai.OpenAI(base_url=srv.base_url, api_key='test')
        fid = c.files.create(file=('t.jsonl', b'{"messages": []}\n'), purpose='fine-tune').id
        c.fine_tuning.jobs.create(training_file=fid, model='gpt-4o-mini-2024-07-18')  # created, then killed before job.json had it
        (tmp_path / 'job.json').write_text(json.dumps({'file_id': fid}))
        r = _oa(load_spec(TASK).seeds(), tmp_path, srv)
        assert r.report['status'] == 'succeeded' and srv.jobs_created == 1 and srv.files_created == 1


def test_openai_budget_and_price_guards(tmp_path):
    df = load_spec(TASK).seeds()
    with FakeFinetuneServer() as srv:
        with pytest.raises(ValueError, match='over budget'):
            _oa(df, tmp_path / 'a', srv, budget_usd=1e-6)
        with pytest.raises(ValueError, match='--price'):
            _oa(df, tmp_path / 'b', srv, model='my-own-model')
        assert _oa(df, tmp_path / 'c', srv, model='my-own-model', price=1.0).report['estimate']['usd_per_1m'] == 1.0
        bad = pd.DataFrame({'messages': [[{'role': 'user', 'content': 'hi'}]]})
        with pytest.raises(ValueError, match="format rules"):
            _oa(bad, tmp_path / 'd', srv)
        assert srv.files_created == 1 and srv.jobs_created == 1  # the refused runs uploaded nothing


# --- OpenAI jobs under the LLM engine's budget ledger ---
def _spend_with_engine(tmp_path, fake_openai, n: int = 3):
    "Real chat calls through the LLM engine (priced high so they cost something) under budget scope 'proj': the ledger's spent."
    from synthbench.llm.engine import LLM

    llm = LLM(
        model='gpt-4o-mini',
        base_url=fake_openai.base_url,
        api_key='test',
        cache_dir=tmp_path / 'cache',
        budget_scope='proj',
        budget_usd=100.0,
        prices={'gpt-4o-mini': (1000.0, 1000.0)},
        progress=False,
    )
    res = llm.chat_many([[{'role': 'user', 'content': f'hello {i}'}] for i in range(n)], max_tokens=16)
    assert all(r.error is None for r in res), [r.error for r in res]
    assert llm.spent_usd > 0
    return llm


def test_openai_job_shares_the_engines_budget(tmp_path, fake_openai):
    df = load_spec(TASK).seeds()
    llm = _spend_with_engine(tmp_path, fake_openai)
    spent = llm.spent_usd
    est = ft.estimate_training_cost(ft.openai_records(df, SHORT), 'gpt-4o-mini-2024-07-18', 3)['usd']
    assert 0 < est
    with FakeFinetuneServer() as srv:
        # the estimate alone fits, but not on top of what the engine spent under the same scope: refused before upload
        with pytest.raises(ft.FinetuneBudgetError) as e:
            _oa(df, tmp_path / 'a', srv, llm=llm, budget_usd=spent + est / 2)
        assert e.value.scope == 'proj' and e.value.estimate_usd == pytest.approx(est) and e.value.spent_usd == pytest.approx(spent)
        assert srv.files_created == srv.jobs_created == 0 and not (tmp_path / 'a' / 'train.jsonl').exists()
        assert llm.spent_usd == pytest.approx(spent) and llm.ledger.reserved < 1e-12  # nothing booked, the hold released
        # the same scope by name, from another process's point of view (cache_dir + budget_scope): also refused
        with pytest.raises(ft.FinetuneBudgetError):
            _oa(df, tmp_path / 'b', srv, cache_dir=tmp_path / 'cache', budget_scope='proj', budget_usd=spent + est / 2)
        # room for it: the job runs and its estimate is booked in the engine's ledger
        r = _oa(df, tmp_path / 'c', srv, llm=llm, budget_usd=spent + est * 1.5)
        assert r.report['status'] == 'succeeded' and r.report['charged_usd'] == pytest.approx(est) and r.report['budget_scope'] == 'proj'
        assert llm.spent_usd == pytest.approx(spent + est)
        # and the engine now sees less room: a request that fit before is refused
        llm.budget_usd = spent + est * 1.5
        big = llm.chat_many([[{'role': 'user', 'content': 'x' * 4000}]], max_tokens=2000)
        assert big[0].error_kind == 'budget', big[0]
    assert srv.jobs_created == 1 and srv.files_created == 1


def test_openai_resumed_job_is_charged_once(tmp_path):
    df = load_spec(TASK).seeds()
    led = lambda: ft.job_ledger('x', budget_scope='proj', cache_dir=tmp_path / 'cache')
    kw = dict(cache_dir=tmp_path / 'cache', budget_scope='proj', budget_usd=1.0)
    with FakeFinetuneServer(polls_to_finish=5) as srv:
        first = _oa(df, tmp_path / 'job', srv, timeout=0, **kw)  # stops after one poll, as if killed
        est = first.report['estimate']['usd']
        l = led()
        assert l.spent() == pytest.approx(est)
        l.close()
        again = _oa(pd.DataFrame(), tmp_path / 'job', srv, **kw)  # polls the same job, books nothing
        assert again.report['status'] == 'succeeded' and srv.jobs_created == 1
        l = led()
        assert l.spent() == pytest.approx(est)
        l.close()
        # killed after the booking but before job.json said so: the job's own ledger row is found, nothing is booked again
        jp = tmp_path / 'job' / 'job.json'
        job = json.loads(jp.read_text())
        job.pop('charged_usd')
        jp.write_text(json.dumps(job))
        _oa(pd.DataFrame(), tmp_path / 'job', srv, **kw)
        l = led()
        assert l.spent() == pytest.approx(est)
        l.close()
        # killed after the job was created but before job.json had its id: found by its file, booked once
        job = json.loads(jp.read_text())
        (tmp_path / 'job2').mkdir()
        (tmp_path / 'job2' / 'job.json').write_text(json.dumps({'file_id': job['file_id']}))
        _oa(df, tmp_path / 'job2', srv, **kw)
        l = led()
        assert l.spent() == pytest.approx(est)
        l.close()
        assert srv.jobs_created == 1
        # a second, different job is a second charge, and the cap counts both
        second = _oa(df, tmp_path / 'job3', srv, **kw)
        l = led()
        assert l.spent() == pytest.approx(est + second.report['estimate']['usd'])
        l.close()
        with pytest.raises(ft.FinetuneBudgetError, match='over budget'):
            _oa(df, tmp_path / 'job4', srv, **{**kw, 'budget_usd': 2.5 * est})
        assert srv.jobs_created == 2


def test_cli_openai_over_budget_is_one_line(tmp_path, capsys):
    from synthbench.formats import save_examples

    data = tmp_path / 'train.jsonl'
    save_examples(load_spec(TASK).seeds(), data, format='openai')
    with FakeFinetuneServer() as srv:
        code = ft.cli_finetune(
            [
                str(data),
                '--backend',
                'openai',
                '--base-url',
                srv.base_url,
                '--out',
                str(tmp_path / 'o'),
                '--budget',
                '0.000001',
                '--budget-scope',
                'proj',
                '--cache-dir',
                str(tmp_path / 'cache'),
                '--poll',
                '0.01',
            ]
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert code != 0 and srv.files_created == 0 and srv.jobs_created == 0
    assert len(err) == 1, err  # one line: budget, scope, estimate
    assert err[0].startswith('synthbench finetune: ') and 'budget_usd=$0.0000' in err[0] and "'proj'" in err[0] and 'estimate $' in err[0]


def test_openai_failed_job_raises(tmp_path):
    with FakeFinetuneServer(fail=True) as srv:
        with pytest.raises(RuntimeError, match='failed'):
            _oa(load_spec(TASK).seeds(), tmp_path, srv)


def test_cost_estimate_scales_with_epochs():
    recs = ft.openai_records(load_spec(TASK).seeds(), SHORT)
    a, b = ft.estimate_training_cost(recs, 'gpt-4o', 1), ft.estimate_training_cost(recs, 'gpt-4o', 3)
    assert b['usd'] == pytest.approx(3 * a['usd']) and a['usd'] == pytest.approx(a['training_tokens'] * 25 / 1e6)


# --- recipe for a GPU ---
def test_recipe_configs_match_trl_and_axolotl(tmp_path):
    import yaml

    r = ft.finetune(load_spec(TASK).seeds(), 'meta-llama/Llama-3.1-8B-Instruct', 'recipe', tmp_path, spec=TASK, qlora=True)
    assert r.backend == 'recipe' and r.report['qlora']
    sft = yaml.safe_load((tmp_path / 'sft.yaml').read_text())
    assert sft['model_name_or_path'] == 'meta-llama/Llama-3.1-8B-Instruct' and sft['bf16'] and sft['use_peft'] and sft['load_in_4bit']
    assert sft['assistant_only_loss'] and sft['datasets'][0]['data_files'] == 'train.jsonl'
    trl = pytest.importorskip('trl')
    from trl.scripts.utils import DatasetConfig

    known = set().union(*(c.__dataclass_fields__ for c in (trl.SFTConfig, trl.ModelConfig, trl.ScriptArguments, trl.DatasetMixtureConfig)))
    assert set(sft) - known == set()
    assert set(sft['datasets'][0]) <= set(DatasetConfig.__dataclass_fields__)
    ax = yaml.safe_load((tmp_path / 'axolotl.yaml').read_text())
    assert ax['adapter'] == 'qlora' and ax['datasets'][0]['path'] == 'train.jsonl' and ax['bf16']
    lines = (tmp_path / 'train.jsonl').read_text().splitlines()
    assert len(lines) == 20 and json.loads(lines[0])['messages'][0]['role'] == 'system'
    compile((tmp_path / 'train.py').read_text(), 'train.py', 'exec')
    assert 'trl sft --config sft.yaml' in (tmp_path / 'run.sh').read_text()


def test_cli_finetune_recipe_and_bad_input(tmp_path, capsys):
    from synthbench.formats import save_examples

    data = tmp_path / 'train.jsonl'
    save_examples(load_spec(TASK).seeds(), data, format='sharegpt')
    assert ft.cli_finetune([str(data), '--backend', 'recipe', '--out', str(tmp_path / 'r')]) == 0
    assert json.loads(capsys.readouterr().out)['backend'] == 'recipe'
    assert ft.cli_finetune([str(tmp_path / 'missing.jsonl'), '--backend', 'recipe', '--out', str(tmp_path / 'r2')]) == 2


# --- done when: the fine-tuned embedded student follows the format on held-out real requests far more often than the base ---
@pytest.mark.slow
@pytest.mark.timeout(2400)  # about 3 min alone on 2 cores; much longer while other jobs share them
def test_finetuned_student_beats_base_on_heldout_format(tmp_path):
    from synthbench.analysis.evaluate import compare_students

    t0 = time.time()
    data = teacher_rows(tmp_path, 300)
    assert len(data) >= 250
    r = ft.finetune(
        data,
        'smollm2-135m',
        'local',
        tmp_path / 'student',
        ft.LoraSettings(max_steps=30, batch_size=8, max_len=128, lr=2e-3, save_every=10),
        system_prompt=SHORT,
        progress=False,
    )
    t_train = time.time() - t0
    c = compare_students(
        {'base': 'smollm2-135m', 'fine-tuned': r.student}, spec=TASK, system_prompt=SHORT, max_new_tokens=48, progress=False
    )
    print(f'\ntrain {t_train:.0f} s ({r.report["seconds_per_step"]:.2f} s/step); total {time.time() - t0:.0f} s\n{c.table.to_string()}')
    base, tuned = c.evals['base'].figures['format_compliance'], c.evals['fine-tuned'].figures['format_compliance']
    assert tuned[0] >= base[0] + 0.3, (base, tuned)
    assert tuned[1] > base[2], (base, tuned)  # the intervals do not overlap
