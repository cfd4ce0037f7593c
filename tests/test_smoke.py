import subprocess, sys, time


def test_import_is_light():
    "`import synthbench` (and every stage module) must not pull in heavy ML libraries: they load lazily, inside functions."
    code = "import time,sys; t=time.time(); import synthbench, synthbench.core, synthbench.cli, synthbench.spec, synthbench.formats, synthbench.stages.validate, synthbench.stages.export, synthbench.llm.engine, synthbench.llm.cost, synthbench.llm.local, synthbench.stages.generate, synthbench.stages.augment, synthbench.stages.judge, synthbench.stages.dedup, synthbench.llm.embed, synthbench.analysis.metrics, synthbench.analysis.audit, synthbench.analysis.tstr, synthbench.run.workbench; print(time.time()-t); print(','.join(m for m in ('torch','sentence_transformers','umap','plotly','llama_cpp','sklearn','ipywidgets','transformers','numba') if m in sys.modules))"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.split('\n')
    assert out[1] == '', f'heavy modules imported at import time: {out[1]}'


def test_cli_help():
    r = subprocess.run(['synthbench', '--help'], capture_output=True, text=True)
    assert r.returncode == 0 and 'dedup' in r.stdout
    r = subprocess.run(['synthbench', 'nope'], capture_output=True, text=True)
    assert r.returncode == 2 and 'unknown command' in r.stderr
