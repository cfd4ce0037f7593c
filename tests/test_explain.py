"""`synthbench run --explain`: the flow of a pipeline after the run's own checks -- every stage, its endpoint -- with no
request sent and no run folder made; a bad file is still exit 2 with one line."""

import contextlib, io
from pathlib import Path
import pytest
from synthbench.cli import main
from synthbench.testing import ScriptedTeacher
from synthbench.run.workbench import explain_pipeline

REPO = Path(__file__).resolve().parents[1]
STAGES = """  - generate: {n: 12}
  - validate
  - judge: {llm: judge, threshold: 3.5}
  - dedup: {methods: [exact, minhash]}
  - filter
  - export: {format: sharegpt}
"""


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def teacher():
    with ScriptedTeacher(REPO / 'seeds' / 'task_api') as t:
        yield t


def test_explain_names_every_stage_and_endpoint_and_sends_nothing(tmp_path, teacher, monkeypatch):
    monkeypatch.setenv('SB_EXPLAIN_KEY', 'sk-' + 'explain-0123456789abcdef')
    p = tmp_path / 'p.yaml'
    p.write_text(
        f"name: ex\ntask: {REPO / 'seeds' / 'task_api'}\nruns_dir: runs\n"
        f"llm: {{model: gpt-4o-mini, base_url: \"{teacher.base_url}\", api_key_env: SB_EXPLAIN_KEY}}\n"
        f"llms: {{judge: {{model: gpt-4o}}}}\nstages:\n{STAGES}"
    )
    code, out, err = cli('run', str(p), '--explain')
    assert code == 0, err
    for i, s in enumerate(['generate', 'validate', 'judge', 'dedup', 'filter', 'export']):
        assert f'[{i + 1}] {s}  (' in out
    assert f"client 'main': model gpt-4o-mini at {teacher.base_url}" in out
    assert f"client 'judge': model gpt-4o at {teacher.base_url}" in out  # inherited endpoint, shown
    assert 'n=12' in out and 'k=20 (default)' in out and 'threshold=3.5' in out
    assert 'rejected (`judge_pass` is False)' in out and '`valid`, `invalid_reason`' in out
    assert 'dataset.jsonl' in out and '06_export.parquet' in out
    assert 'explain-0123456789abcdef' not in out + err  # never the key
    assert teacher.stats['requests'] == 0  # no request reached the teacher
    assert not (tmp_path / 'runs').exists()  # no run folder


def test_explain_custom_stage_and_local_model(tmp_path):
    p = tmp_path / 'p.yaml'
    p.write_text('stages:\n  - {name: gen, fn: "synthbench.run.workbench:_demo_rows", params: {n: 4}}\n  - filter: {drop: [invalid]}\n')
    txt = explain_pipeline(p)
    assert '[1] gen  (synthbench.run.workbench:_demo_rows)' in txt and 'n=4, invalid_every=3 (default)' in txt
    assert 'not declared (a custom stage)' in txt and 'local (embedded SmolLM2-135M' in txt
    assert "drops:  rows marked invalid (`valid` is False)" in txt
    assert not (tmp_path / 'runs').exists() and not Path('runs/p').exists()


@pytest.mark.parametrize(
    'body,msg',
    [
        ('stages:\n  - valdate\n', 'line 2: stages[0] (valdate): unknown stage'),
        ('stages:\n  - dedup: {method: exact}\n', "did you mean 'methods'?"),
        ('stages: [validate]\nllm:\n  model: m\n  temprature: 0.5\n', "line 4: llm.temprature"),
    ],
)
def test_explain_bad_file_exits_2_with_one_line(tmp_path, body, msg):
    p = tmp_path / 'bad.yaml'
    p.write_text(body)
    code, out, err = cli('run', str(p), '--explain')
    assert code == 2 and out == ''
    assert len(err.strip().splitlines()) == 1 and msg in err and 'Traceback' not in err


def test_explain_stage_level_llm_and_drop_rules():
    txt = explain_pipeline(
        {
            'llm': {'model': 'gpt-4o-mini', 'base_url': 'http://127.0.0.1:7/v1'},
            'stages': [{'judge': {'llm': {'model': 'gpt-4o', 'base_url': 'http://127.0.0.1:8/v1'}, 'drop': ['rejected']}}, 'export'],
        }
    )
    assert "calls:  client 'stage0': model gpt-4o at http://127.0.0.1:8/v1" in txt
    assert "after the stage (`drop:`), rows marked rejected (`judge_pass` is False)" in txt
    assert '01_judge.dropped.parquet' in txt and "[2] export" in txt
