"""Hugging Face export done-when: a real run against the scripted teacher -> `synthbench hub` -> the saved DatasetDict and
its card load back and validate; planted PII is flagged and redacted; TRL's SFTTrainer takes one step on the saved train split."""

import contextlib, io, json, os
from collections import Counter
from pathlib import Path
import pandas as pd, pytest, yaml
from synthbench.cli import main
from synthbench.testing import ScriptedTeacher

REPO = Path(__file__).resolve().parents[1]
KEY = 'sk-' + 'hub-0123456789abcdef'  # a fake key, split so secret scanners don't flag it
STAGES = """  - generate: {n: 60}
  - augment: {op: paraphrase, rows: 12}
  - validate
  - judge: {llm: judge}
  - dedup
  - filter
  - add_seeds
  - pii
  - export
  - hub: {license: cc-by-4.0}
"""


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    "A finished run (generate -> augment -> validate -> judge (another model) -> dedup -> filter -> seeds -> pii -> export) on the scripted teacher."
    d = tmp_path_factory.mktemp('hubrun')
    old = {k: os.environ.get(k) for k in ('SB_HUB_KEY', 'SYNTHBENCH_CACHE_DIR')}
    os.environ.update(SB_HUB_KEY=KEY, SYNTHBENCH_CACHE_DIR=str(d / 'cache'))
    try:
        with ScriptedTeacher(REPO / 'seeds' / 'task_api', defect_rate=0.2, seed=1) as t:
            llm = f'{{model: gpt-4o-mini, base_url: "{t.base_url}", api_key_env: SB_HUB_KEY, progress: false, max_retries: 3}}'
            p = d / 'hub.yaml'
            p.write_text(
                f"name: hubrun\ntask: {REPO / 'seeds' / 'task_api'}\nruns_dir: {d / 'runs'}\nseed: 3\nllm: {llm}\n"
                f"llms: {{judge: {{model: gpt-4o}}}}\nstages:\n{STAGES}"
            )
            code, out, err = cli('run', str(p), '--quiet')
        assert code == 0, err[-2000:]
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return d / 'runs' / 'hubrun'


def test_saved_datasetdict_and_card_load_back_and_validate(run_dir, tmp_path):
    from datasets import load_from_disk
    from synthbench.formats import load_table
    from synthbench.stages.export import lineage_roots
    from synthbench.stages.hub import validate_card
    from synthbench.run.workbench import read_stage_table

    out = tmp_path / 'hf'
    code, so, se = cli('hub', str(run_dir), '-o', str(out), '--license', 'apache-2.0', '--manual-cost', '0.5', '--safety-critical', 'no')
    assert code == 0, se
    kept = load_table(run_dir / 'dataset.parquet')
    dd = load_from_disk(str(out))
    assert set(dd) == {'train', 'validation', 'test'}
    sizes = {k: len(v) for k, v in dd.items()}
    assert sum(sizes.values()) == len(kept) and sizes['train'] > sizes['validation'] > 0 and sizes['test'] > 0, sizes
    assert abs(sizes['train'] / len(kept) - 0.8) < 0.1, sizes
    # every kept row once, and no lineage family split across train/validation/test
    rows = pd.DataFrame([{**r, 'split': k} for k, ds in dd.items() for r in ds.to_list()])
    assert sorted(rows['id']) == sorted(kept['id'].astype(str))
    assert (rows['parent_id'].notna()).sum() >= 3, 'the run should keep some augmented rows with a parent'
    fam = lineage_roots(rows)
    assert rows.groupby(fam)['split'].nunique().max() == 1
    assert all(m[-1]['role'] == 'assistant' for m in rows['messages'])
    # the Parquet files the card's configs name hold the same rows
    assert sum(len(pd.read_parquet(out / 'data' / f'{k}.parquet')) for k in sizes) == len(kept)
    # the card: YAML parses, validates, and says the truth
    text = (out / 'README.md').read_text()
    meta = yaml.safe_load(text.split('---\n')[1])
    assert validate_card(out / 'README.md') == meta
    from huggingface_hub import DatasetCard

    assert DatasetCard.load(out / 'README.md').data.license == 'apache-2.0'
    assert meta['source_models'] == {'generator': ['gpt-4o-mini'], 'judge': ['gpt-4o']}
    assert meta['task_categories'] == ['text-generation'] and meta['size_categories'] == ['n<1K']
    assert len(meta['generation_config_hash']) == 16
    src = Counter(kept['source'])
    syn = src['generated'] + src['augmented']
    assert meta['synthetic_share'] == round(syn / len(kept), 4) and 0 < meta['synthetic_share'] < 1
    assert f"{syn:,} synthetic rows" in text and f"{src['seed']:,} real rows" in text
    assert 'OpenAI' in text and 'https://openai.com/policies/terms-of-use' in text and 'checked' in text
    # what was filtered and why: the filter stage's dropped rows, counted by rule
    dropped = read_stage_table(next(run_dir.glob('*_filter.dropped.parquet')))
    by_rule = Counter(
        next((k for k in ('invalid', 'duplicate', 'rejected') if r.startswith(k) or r.startswith('judge ' + k)), r)
        for r in dropped['drop_reason']
    )
    assert by_rule['invalid'] >= 1 and by_rule['duplicate'] >= 1
    for rule in ('invalid', 'duplicate'):
        assert f"| filter | {rule} | {by_rule[rule]} |" in text, (rule, by_rule)
    # PII (the pii stage's counts), checklist, cost per kept example vs manual labelling
    pii = json.loads(next(run_dir.glob('*_pii.report.json')).read_text())
    assert f"{pii['findings']} finding(s) in {pii['rows_flagged']} of {pii['rows_checked']} rows" in text
    assert '| Safety-critical task? | **no** |' in text and '| Already 1,000+ real examples? | **no** |' in text
    man = json.loads((run_dir / 'manifest.json').read_text())
    assert meta['cost']['kept_rows'] == len(kept) and meta['cost']['manual_total'] == 0.5 * len(kept)
    assert abs(meta['cost']['cost_per_kept'] - man['totals']['cost_usd'] / len(kept)) < 1e-6
    assert man['totals']['cost_usd'] > 0 and 'per kept example; by hand $0.50 each' in text
    assert KEY not in text
    # the pipeline's own hub stage wrote the same rows, split the same way (same seed)
    st = load_from_disk(str(run_dir / 'hf'))
    assert {k: len(v) for k, v in st.items()} == sizes and sorted(st['test']['id']) == sorted(dd['test']['id'])
    sm = validate_card(run_dir / 'hf' / 'README.md')
    assert (
        sm['license'] == 'cc-by-4.0'
        and sm['source_models'] == meta['source_models']
        and sm['generation_config_hash'] == meta['generation_config_hash']
    )
    assert KEY not in (run_dir / 'hf' / 'README.md').read_text()


def test_card_validation_catches_what_the_hub_would_refuse(run_dir, tmp_path):
    from synthbench.stages.hub import save_hf, validate_card, CardError

    ex = save_hf(run_dir, tmp_path / 'hf', check_pii=False)
    text = (tmp_path / 'hf' / 'README.md').read_text()
    assert validate_card(tmp_path / 'hf' / 'README.md')['license'] == 'unknown'
    for old, new, why in (
        ('license: unknown', 'license: apache 2', 'not a Hub license id'),
        ('- text-generation', '- chat-bots', 'not Hub task ids'),
        ('- n<1K', '- small', 'size bucket'),
        ('path: data/test.parquet', 'path: data/missing.parquet', 'is not in'),
    ):
        with pytest.raises(CardError, match=why):
            validate_card(text.replace(old, new, 1), folder=tmp_path / 'hf')
    with pytest.raises(CardError, match='does not parse'):
        validate_card(text.replace('license: unknown', 'license: [unknown', 1))


def test_dpo_and_prompt_completion_formats(run_dir, tmp_path):
    from datasets import load_from_disk
    from synthbench.stages.hub import save_hf

    save_hf(run_dir, tmp_path / 'dpo', format='dpo', check_pii=False)
    dd = load_from_disk(str(tmp_path / 'dpo'))
    r = dd['train'].to_list()
    assert {'prompt', 'chosen', 'rejected'} <= set(dd['train'].column_names)
    assert all(x['chosen'][0]['role'] == 'assistant' and x['rejected'][0]['role'] == 'assistant' for x in r)
    assert sum(x['chosen'] != x['rejected'] for x in r) == len(r)
    from trl.data_utils import is_conversational

    assert is_conversational(r[0])
    save_hf(run_dir, tmp_path / 'pc', format='prompt_completion', check_pii=False)
    assert load_from_disk(str(tmp_path / 'pc'))['test'].column_names[:2] == ['prompt', 'completion']


def test_planted_pii_is_flagged_counted_and_redacted(run_dir, tmp_path):
    from datasets import load_from_disk
    from synthbench.formats import load_table
    from synthbench.stages.pii import find_pii
    from synthbench.stages.hub import save_hf

    df = load_table(run_dir / 'dataset.parquet').drop(columns=['pii_count', 'pii_types', 'pii_spans'])
    plant = {
        'EMAIL_ADDRESS': ['jane.doe@example.com', 'r.kumar@mailbox.org'],
        'PHONE_NUMBER': ['(415) 555-0134', '+44 20 7946 0958'],
        'CREDIT_CARD': ['4111 1111 1111 1111', '5500 0000 0000 0004'],
        'PERSON': ['Margaret Thompson', 'Rajesh Kumar'],
    }
    texts = [
        f"Add a task: email {plant['EMAIL_ADDRESS'][0]} about the invoice",
        f"Add a task: call {plant['PHONE_NUMBER'][0]} tomorrow",
        f"Add a task: cancel card {plant['CREDIT_CARD'][0]} today",
        f"Add a task: send the contract to Margaret Thompson",
        f"Add a task: write to {plant['EMAIL_ADDRESS'][1]} or ring {plant['PHONE_NUMBER'][1]}",
        f"Add a task: check card {plant['CREDIT_CARD'][1]} charges with Rajesh Kumar",
    ]
    rows = df.index[df['source'].eq('seed')][: len(texts)]
    for i, t in zip(rows, texts):
        m = [dict(x) for x in df.at[i, 'messages']]
        u = max(k for k, x in enumerate(m) if x['role'] == 'user')
        m[u]['content'] = t
        df.at[i, 'messages'] = m
    before = find_pii(df)
    planted = before.findings[before.findings['row'].isin(list(df.index.get_indexer(rows)))]
    got = Counter(planted['type'])
    assert {k: got[k] for k in plant} == {k: 2 for k in plant}, planted[['type', 'text']]
    ex = save_hf(df, tmp_path / 'hf', redact=True, check_pii=True, name='planted')
    assert ex.pii['redacted'] and ex.pii['findings'] >= 8 and ex.pii['by_type']['CREDIT_CARD'] == 2
    dumped = json.dumps([r for ds in load_from_disk(str(tmp_path / 'hf')).values() for r in ds.to_list()])
    for vals in plant.values():
        for v in vals:
            assert v not in dumped, v
    for tag in ('<EMAIL_ADDRESS>', '<PHONE_NUMBER>', '<CREDIT_CARD>', '<PERSON>'):
        assert tag in dumped
    text = (tmp_path / 'hf' / 'README.md').read_text()
    assert 'CREDIT_CARD 2' in text and 'EMAIL_ADDRESS 2' in text and 'were redacted' in text and 'pii-redacted' in text


def test_cli_hub_failures_are_one_line(tmp_path):
    code, out, err = cli('hub', str(tmp_path / 'nope'), '-o', str(tmp_path / 'o'))
    assert code == 2 and err.strip().count('\n') == 0 and 'no such file' in err
    (tmp_path / 'x.jsonl').write_text(
        json.dumps({'messages': [{'role': 'user', 'content': 'q'}, {'role': 'assistant', 'content': 'a'}]}) + '\n'
    )
    code, out, err = cli('hub', str(tmp_path / 'x.jsonl'), '-o', str(tmp_path / 'o'), '--splits', '0.9,0.2', '--no-pii')
    assert code == 2 and 'three shares' in err and 'Traceback' not in err
    code, out, err = cli('hub', str(tmp_path / 'x.jsonl'), '-o', str(tmp_path / 'o'), '--license', 'apache2', '--no-pii')
    assert code == 2 and 'not a Hub license id' in err


def test_cli_hub_engine_ray_runs_here_and_says_so(tmp_path):
    "A script that passes --engine ray to every stage: hub (a whole stage) runs in this process, says so in one line, writes what local writes."
    rows = [
        {'messages': [{'role': 'user', 'content': f'Add a task: call the bank {i}'}, {'role': 'assistant', 'content': f'Created task {i}'}]}
        for i in range(30)
    ]
    (tmp_path / 'x.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    outs = {}
    for eng in ('local', 'ray'):
        code, out, err = cli('hub', str(tmp_path / 'x.jsonl'), '-o', str(tmp_path / eng), '--no-pii', '--engine', eng)
        assert code == 0, err
        outs[eng] = err
        assert (tmp_path / eng / 'README.md').exists()
    assert 'runs in this process on the Ray engine too' in outs['ray'] and 'Ray engine' not in outs['local']
    assert sorted(p.name for p in (tmp_path / 'ray').iterdir()) == sorted(p.name for p in (tmp_path / 'local').iterdir())
    code, out, err = cli('hub', str(tmp_path / 'x.jsonl'), '-o', str(tmp_path / 'o'), '--engine', 'rey')
    assert code == 2 and "'rey' is not an engine" in err and err.strip().count('\n') == 0
    code, out, err = cli('generate', '--address', 'auto', str(tmp_path))
    assert code == 2 and 'needs --engine ray' in err


def test_estimate_prices_judge_and_augment_and_roi(tmp_path):
    from synthbench.llm.cost import estimate_run, roi

    rows = [
        {
            'messages': [
                {'role': 'user', 'content': f'Add a task: pay rent {i}'},
                {'role': 'assistant', 'content': "Created task: 'Pay rent' | Priority: medium | Due: none"},
            ]
        }
        for i in range(50)
    ]
    gen = estimate_run(rows, 'gpt-4o-mini')
    full = estimate_run(rows, 'gpt-4o-mini', judge_model='gpt-4o-mini', augment_per_row=2)
    assert list(full.lines) == ['generate', 'augment', 'judge'] and full.lines['augment'].calls == 100 and full.lines['judge'].calls == 150
    assert full.total.usd > gen.total.usd and abs(full.total.usd - sum(e.usd for e in full.lines.values())) < 1e-12
    r = roi(full.total.usd, 40, 0.25)
    assert r.cost_per_kept == full.total.usd / 40 and r.manual_total == 10.0 and r.ratio > 1


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_trl_sft_trainer_takes_a_step_on_the_saved_train_split(run_dir, tmp_path):
    import torch
    from datasets import load_from_disk
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer
    from synthbench.stages.finetune import load_student
    from synthbench.stages.hub import save_hf

    save_hf(run_dir, tmp_path / 'hf', check_pii=False)
    train = load_from_disk(str(tmp_path / 'hf'))['train'].select(range(8))
    model, tok = load_student('smollm2-135m', device='cpu')
    # transformers flags a model read from GGUF as quantized, though it dequantized every tensor to fp32 on load; Trainer refuses
    # "quantized" models, so clear the flag (synthbench's own LoRA loop does not go through Trainer and never meets this)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    model.hf_quantizer, model.is_quantized = None, False
    if hasattr(model.config, 'quantization_config'):
        del model.config.quantization_config
    args = SFTConfig(
        output_dir=str(tmp_path / 'out'),
        max_steps=1,
        per_device_train_batch_size=2,
        max_length=128,
        learning_rate=1e-4,
        report_to=[],
        save_strategy='no',
        logging_steps=1,
        use_cpu=True,
        bf16=False,
        dataloader_num_workers=0,
    )
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=['q_proj', 'v_proj'], task_type='CAUSAL_LM')
    tr = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tok, peft_config=lora)
    before = {n: p.detach().clone() for n, p in tr.model.named_parameters() if p.requires_grad}
    out = tr.train()
    assert out.global_step == 1 and out.training_loss == out.training_loss and out.training_loss > 0
    after = dict(tr.model.named_parameters())
    assert any(not torch.equal(before[n], after[n].detach()) for n in before), 'LoRA weights did not move'


def test_tool_call_rows_keep_their_calls(tmp_path):
    "A tool-call seed set saved as a DatasetDict keeps every tool call, tool result id and the tools list (as JSON)."
    from datasets import load_from_disk
    from synthbench.spec import load_spec
    from synthbench.stages.hub import to_datasetdict

    seeds = load_spec(Path(__file__).parent.parent / 'seeds' / 'tool_calls').seeds()
    n_calls = sum(len(m.get('tool_calls') or []) for ms in seeds['messages'] for m in ms)
    assert n_calls > 0
    dd = to_datasetdict(seeds, splits=(0.8, 0.1, 0.1))
    dd.save_to_disk(str(tmp_path / 'hf'))
    back = load_from_disk(str(tmp_path / 'hf'))
    rows = [r for s in back.values() for r in s]
    assert len(rows) == len(seeds)
    got = sum(len(m.get('tool_calls') or []) for r in rows for m in r['messages'])
    assert got == n_calls
    calls = [c for r in rows for m in r['messages'] for c in (m.get('tool_calls') or [])]
    assert all(isinstance(c['function']['arguments'], str) and json.loads(c['function']['arguments']) is not None for c in calls)
    assert all(json.loads(r['tools']) for r in rows)
    ids = {c['id'] for c in calls}
    assert {m['tool_call_id'] for r in rows for m in r['messages'] if m['role'] == 'tool'} <= ids


def test_prompt_completion_split_is_core_split_reply():
    "prompt_completion/dpo cut at the assistant turn that ends the chat (core.split_reply); a chat without one fails loudly."
    from synthbench.core import make_table
    from synthbench.stages.hub import hf_records

    sys_, u = {'role': 'system', 'content': 'You manage tasks.'}, {'role': 'user', 'content': 'Add a task: buy milk'}
    a1, u2 = {'role': 'assistant', 'content': "Created task: 'Buy milk'"}, {'role': 'user', 'content': 'And bread'}
    a2 = {'role': 'assistant', 'content': "Created task: 'Bread'"}
    rec = hf_records(make_table([{'messages': [sys_, u, a1, u2, a2]}]), 'prompt_completion')[0]
    assert rec['prompt'] == [sys_, u, a1, u2] and rec['completion'] == [a2]
    with pytest.raises(ValueError, match="does not end with an assistant reply.*'user'"):
        hf_records(make_table([{'messages': [u, a1, u2]}]), 'prompt_completion')
