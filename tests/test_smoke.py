import subprocess, sys, time

def test_import_is_fast():
    "`import synthbench` (and core) must not pull in heavy ML libraries."
    code = "import time,sys; t=time.time(); import synthbench, synthbench.core, synthbench.cli; print(time.time()-t); print(','.join(m for m in ('torch','sentence_transformers','umap','plotly','llama_cpp') if m in sys.modules))"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.split('\n')
    assert float(out[0]) < 1.0, out
    assert out[1] == '', f'heavy modules imported at import time: {out[1]}'

def test_cli_help():
    r = subprocess.run(['synthbench', '--help'], capture_output=True, text=True)
    assert r.returncode == 0 and 'dedup' in r.stdout
    r = subprocess.run(['synthbench', 'nope'], capture_output=True, text=True)
    assert r.returncode == 2 and 'unknown command' in r.stderr
