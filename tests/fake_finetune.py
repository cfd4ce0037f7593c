"""A loopback fake of OpenAI's fine-tuning API: `/v1/files` and `/v1/fine_tuning/jobs` (create, list, retrieve, events).

A job goes validating_files -> running -> succeeded over `polls_to_finish` retrieves; `fail=True` makes it end `failed`.
Counts what was created (`files_created`, `jobs_created`) so tests can assert that a resumed run made no second job."""

from __future__ import annotations
import json, re, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeFinetuneServer:
    "OpenAI-compatible fine-tuning endpoints on 127.0.0.1 (a free port); use as a context manager."

    def __init__(self, polls_to_finish: int = 3, fail: bool = False):
        self.polls_to_finish, self.fail = polls_to_finish, fail
        self.files, self.jobs, self.polls = {}, {}, {}
        self.files_created = self.jobs_created = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f'http://127.0.0.1:{self.httpd.server_address[1]}/v1'

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _job_view(self, jid: str, advance: bool) -> dict:
        j = self.jobs[jid]
        if advance:
            self.polls[jid] = self.polls.get(jid, 0) + 1
        n = self.polls.get(jid, 0)
        status = 'validating_files' if n <= 1 else 'running' if n < self.polls_to_finish else ('failed' if self.fail else 'succeeded')
        if status != j['status']:
            j['status'] = status
            j['_events'].append(
                {
                    'object': 'fine_tuning.job.event',
                    'id': f'ev-{jid}-{len(j["_events"])}',
                    'created_at': int(time.time()),
                    'level': 'error' if status == 'failed' else 'info',
                    'message': f'Job {status}',
                    'type': 'message',
                }
            )
            if status == 'succeeded':
                j['fine_tuned_model'] = f"ft:{j['model']}:synthbench:{j['suffix'] or 'model'}:{jid[-6:]}"
                j['trained_tokens'] = self.files[j['training_file']]['bytes'] // 4
                j['finished_at'] = int(time.time())
            if status == 'failed':
                j['error'] = {'code': 'invalid_training_file', 'message': 'The fake was told to fail', 'param': None}
        return {k: v for k, v in j.items() if not k.startswith('_')}

    def _handler(self):
        srv = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, obj):
                b = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(b)))
                self.end_headers()
                self.wfile.write(b)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get('Content-Length') or 0))

            def do_POST(self):
                path, body = self.path.split('?')[0], self._body()
                with srv.lock:
                    if path == '/v1/files':
                        m = re.search(rb'filename="([^"]*)"', body)
                        start = body.find(b'\r\n\r\n', m.end()) + 4 if m else 0
                        content = body[start : body.find(b'\r\n--', start)] if m else b''
                        srv.files_created += 1
                        fid = f'file-{srv.files_created:06d}'
                        srv.files[fid] = {
                            'id': fid,
                            'object': 'file',
                            'bytes': len(content),
                            'created_at': int(time.time()),
                            'filename': m.group(1).decode() if m else 'upload',
                            'purpose': 'fine-tune',
                            'status': 'processed',
                            '_lines': content.count(b'\n'),
                        }
                        return self._send(200, {k: v for k, v in srv.files[fid].items() if not k.startswith('_')})
                    if path == '/v1/fine_tuning/jobs':
                        d = json.loads(body or b'{}')
                        if d.get('training_file') not in srv.files:
                            return self._send(
                                400,
                                {
                                    'error': {
                                        'message': f"invalid training_file: {d.get('training_file')}",
                                        'type': 'invalid_request_error',
                                        'param': 'training_file',
                                        'code': None,
                                    }
                                },
                            )
                        srv.jobs_created += 1
                        jid = f'ftjob-{srv.jobs_created:06d}'
                        srv.jobs[jid] = {
                            'id': jid,
                            'object': 'fine_tuning.job',
                            'created_at': int(time.time()),
                            'model': d.get('model'),
                            'training_file': d['training_file'],
                            'validation_file': None,
                            'suffix': d.get('suffix'),
                            'hyperparameters': {
                                'n_epochs': (d.get('hyperparameters') or {}).get('n_epochs', 'auto'),
                                'batch_size': 'auto',
                                'learning_rate_multiplier': 'auto',
                            },
                            'status': 'validating_files',
                            'fine_tuned_model': None,
                            'finished_at': None,
                            'trained_tokens': None,
                            'organization_id': 'org-fake',
                            'result_files': [],
                            'seed': 0,
                            'error': None,
                            '_events': [
                                {
                                    'object': 'fine_tuning.job.event',
                                    'id': f'ev-{jid}-0',
                                    'created_at': int(time.time()),
                                    'level': 'info',
                                    'message': f"Created fine-tuning job: {jid}",
                                    'type': 'message',
                                }
                            ],
                        }
                        return self._send(200, srv._job_view(jid, False))
                self._send(404, {'error': {'message': f'no route {path}', 'type': 'invalid_request_error'}})

            def do_GET(self):
                path = self.path.split('?')[0]
                with srv.lock:
                    if path == '/v1/fine_tuning/jobs':
                        data = [srv._job_view(j, False) for j in reversed(list(srv.jobs))]
                        return self._send(200, {'object': 'list', 'data': data, 'has_more': False})
                    m = re.fullmatch(r'/v1/fine_tuning/jobs/([^/]+)(/events)?', path)
                    if m and m.group(1) in srv.jobs:
                        if m.group(2):
                            ev = list(reversed(srv.jobs[m.group(1)]['_events']))
                            return self._send(200, {'object': 'list', 'data': ev, 'has_more': False})
                        return self._send(200, srv._job_view(m.group(1), True))
                self._send(404, {'error': {'message': f'no route {path}', 'type': 'invalid_request_error'}})

        return H
