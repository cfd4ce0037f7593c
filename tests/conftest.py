"Shared pytest fixtures (keep small)."

import os, sys
import pytest

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
from fake_openai import FakeOpenAIServer, echo_responder  # noqa: E402


@pytest.fixture
def fake_openai():
    "A running `FakeOpenAIServer` (echo answers); set `.responder` / `.latency` to shape answers."
    with FakeOpenAIServer() as srv:
        yield srv
