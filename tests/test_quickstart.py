"""The README's promise: `llm-router serve` with the quickstart answers the openai SDK."""

import subprocess
import sys
from pathlib import Path

import openai

from router.testing import RouterProcess

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "configs" / "quickstart.yaml"


def test_quickstart_serves_streamed_and_plain_answers():
    with RouterProcess(QUICKSTART) as router:
        client = openai.OpenAI(base_url=router.base_url, api_key="sk-router-demo", max_retries=0)
        stream = client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "Hello!"}], stream=True
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        plain = client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "Hello!"}]
        )
        assert streamed and streamed == plain.choices[0].message.content
        assert [m.id for m in client.models.list()] == ["demo"]


def readme_examples() -> list[str]:
    """The README's Python examples, from its opening to `## What it does`."""
    text = (QUICKSTART.parents[2] / "README.md").read_text().split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


def test_readme_examples_run_against_the_quickstart():
    """Each example of the README's opening (chat completions, the Responses API with the
    openai SDK, the Messages API with the anthropic SDK) runs as a user would run it."""
    examples = readme_examples()
    assert len(examples) == 2 and "responses.create" in examples[1]
    with RouterProcess(QUICKSTART) as router:
        for example in examples:
            code = example.replace("http://127.0.0.1:4000", router.url)
            done = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, timeout=60, check=False
            )
            assert done.returncode == 0, done.stderr.decode()
            lines = done.stdout.decode().splitlines()
            assert lines and all(line.strip() for line in lines)
