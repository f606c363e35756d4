"""The README's promise: `llm-switchyard serve` with the quickstart answers the openai SDK."""

import base64
import io
import subprocess
import sys
import warnings
import wave
from datetime import datetime
from pathlib import Path
from typing import Literal

import anthropic
import httpx
import openai
import orjson
import pytest
from pydantic import BaseModel, Field

from router.testing import RouterProcess, closed_after_test

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "configs" / "quickstart.yaml"


def test_quickstart_serves_streamed_and_plain_answers():
    with RouterProcess(QUICKSTART) as router:
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key="sk-router-demo", max_retries=0)
        )
        stream = client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "Hello!"}], stream=True
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        plain = client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "Hello!"}]
        )
        assert streamed and streamed == plain.choices[0].message.content
        assert [m.id for m in client.models.list()] == ["demo"]


def test_the_mock_keeps_to_a_request_s_limits_in_every_api():
    """The README: the mock keeps to `max_tokens` (cut with `length`), `stop` strings (ended
    before the string) and `n`, as a model does, a word a token; in the Messages and
    Responses APIs too; and embeddings have the `dimensions` and encoding asked for."""
    hello = [{"role": "user", "content": "Hello!"}]
    with RouterProcess(QUICKSTART) as router:
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key="sk-router-demo", max_retries=0)
        )
        whole = client.chat.completions.create(model="demo", messages=hello)
        words = whole.choices[0].message.content.split(" ")
        assert len(words) > 5 and whole.choices[0].finish_reason == "stop"
        cut = client.chat.completions.create(model="demo", messages=hello, max_tokens=5)
        assert cut.choices[0].message.content == " ".join(words[:5])
        assert (cut.choices[0].finish_reason, cut.usage.completion_tokens) == ("length", 5)
        stream = client.chat.completions.create(
            model="demo", messages=hello, max_completion_tokens=3, n=2, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        texts, ends, used = ["", ""], {}, None
        for chunk in stream:
            used = chunk.usage.completion_tokens if chunk.usage else used
            for choice in chunk.choices:
                texts[choice.index] += choice.delta.content or ""
                ends[choice.index] = choice.finish_reason or ends.get(choice.index)
        assert texts == [" ".join(words[:3])] * 2 and ends == {0: "length", 1: "length"}
        assert used == 6
        stop = words[3]
        ended = client.chat.completions.create(model="demo", messages=hello, stop=[stop])
        content = ended.choices[0].message.content
        assert content == " ".join(words)[: " ".join(words).find(stop)]
        assert ended.choices[0].finish_reason == "stop"
        claude = closed_after_test(
            anthropic.Anthropic(base_url=router.url, api_key="sk-router-demo", max_retries=0)
        )
        message = claude.messages.create(model="demo", max_tokens=4, messages=hello)
        assert (message.stop_reason, message.usage.output_tokens) == ("max_tokens", 4)
        with claude.messages.stream(
            model="demo", max_tokens=100, stop_sequences=[stop], messages=hello
        ) as streamed:
            final = streamed.get_final_message()
        assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", stop)
        assert final.content[0].text == content  # type: ignore[union-attr]
        response = client.responses.create(model="demo", input="Hello!", max_output_tokens=16)
        assert len(words) > 16 and response.status == "incomplete"
        assert response.incomplete_details.reason == "max_output_tokens"  # type: ignore[union-attr]
        floats = (
            client.embeddings.create(
                model="demo", input="Hello!", dimensions=4, encoding_format="float"
            )
            .data[0]
            .embedding
        )
        packed = client.embeddings.create(model="demo", input="Hello!", dimensions=4)  # base64
        assert len(floats) == 4 and packed.data[0].embedding == pytest.approx(floats, abs=1e-6)
        raw = httpx.post(
            router.base_url + "/embeddings",
            json={"model": "demo", "input": "Hello!", "encoding_format": "base64"},
            headers={"authorization": "Bearer sk-router-demo"},
        ).json()
        assert isinstance(raw["data"][0]["embedding"], str)


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


def _wav(path: Path, seconds: float, rate: int = 16_000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x01" * int(seconds * rate))
    return path


def test_quickstart_serves_every_operation_offline(tmp_path, openapi):
    """Images (made and edited), speech, transcriptions, translations, moderations and
    rerank, answered by the mock in the
    shapes OpenAI's own description gives (checked where the description is available)."""
    recording = _wav(tmp_path / "hello.wav", 2.0)
    with RouterProcess(QUICKSTART) as router:
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key="sk-router-demo", max_retries=0)
        )
        images = client.images.generate(
            model="demo", prompt="a fox", n=2, response_format="b64_json"
        )
        png = base64.b64decode(images.data[1].b64_json or "")
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(images.data) == 2
        as_url = client.images.generate(model="demo", prompt="a fox")
        assert (as_url.data[0].url or "").startswith("data:image/png;base64,")
        streamed = client.images.generate(
            model="demo", prompt="a fox", stream=True, partial_images=1
        )
        assert [e.type for e in streamed] == [
            "image_generation.partial_image",
            "image_generation.completed",
        ]

        with client.audio.speech.with_streaming_response.create(
            model="demo", voice="alloy", input="hello from the router", response_format="wav"
        ) as speech:
            assert speech.headers["content-type"] == "audio/wav"
            audio = speech.read()
        with wave.open(io.BytesIO(audio)) as heard:
            assert heard.getframerate() == 24_000 and heard.getnframes() > 0
        with client.audio.speech.with_streaming_response.create(
            model="demo", voice="alloy", input="hi"
        ) as speech:
            assert speech.headers["content-type"] == "audio/mpeg"
            assert speech.read()[:2] == b"\xff\xfb"  # an MPEG audio frame

        size = recording.stat().st_size
        with recording.open("rb") as upload:
            text = client.audio.transcriptions.create(model="demo", file=upload)
        assert text.text == f"mock transcript of {size} bytes of audio"
        with recording.open("rb") as upload:
            verbose = client.audio.transcriptions.with_raw_response.create(
                model="demo", file=upload, response_format="verbose_json"
            )
        assert verbose.parse().duration == 2.0  # from the WAV header
        with recording.open("rb") as upload:
            vtt = client.audio.transcriptions.create(
                model="demo", file=upload, response_format="vtt"
            )
        assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n")
        with warnings.catch_warnings(), recording.open("rb") as upload:
            warnings.simplefilter("ignore", DeprecationWarning)  # (the SDK's, for translations)
            translated = client.audio.translations.with_raw_response.create(
                model="demo", file=upload, response_format="verbose_json"
            )
        assert translated.parse().text == f"mock translation of {size} bytes of audio"
        assert translated.parse().language == "english"
        edited = client.images.edit(
            model="demo", image=("fox.png", png, "image/png"), prompt="a hat", n=3
        )
        assert len(edited.data) == 3 and (edited.data[0].url or "").startswith("data:image/png")
        by_reference = httpx.post(
            router.base_url + "/images/edits",
            headers={"authorization": "Bearer sk-router-demo"},
            json={"model": "demo", "prompt": "a hat", "images": [{"file_id": "file-1"}], "n": 2},
        )
        assert len(by_reference.json()["data"]) == 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # (the SDK's, for variations)
            varied = client.images.create_variation(
                model="demo", image=("fox.png", png, "image/png"), n=2, response_format="b64_json"
            )
        assert [base64.b64decode(i.b64_json or "") for i in varied.data] == [png, png]

        moderated = client.moderations.with_raw_response.create(
            model="demo", input=["I will kill the process", "a nice day"]
        )
        assert [r.flagged for r in moderated.parse().results] == [True, False]
        ranked = httpx.post(
            router.base_url + "/rerank",
            headers={"authorization": "Bearer sk-router-demo"},
            json={"model": "demo", "query": "red apple", "documents": ["pear", "red apple"]},
        ).json()
        assert [r["index"] for r in ranked["results"]] == [1, 0]
        listed = client.models.with_raw_response.list()
        openapi.validate("ImagesResponse", images.model_dump(exclude_unset=True))
        openapi.validate("CreateModerationResponse", orjson.loads(moderated.content))
        openapi.validate("CreateTranscriptionResponseVerboseJson", orjson.loads(verbose.content))
        openapi.validate("CreateTranslationResponseVerboseJson", orjson.loads(translated.content))
        openapi.validate("ImagesResponse", edited.model_dump(exclude_unset=True))
        openapi.validate("ImagesResponse", by_reference.json())
        openapi.validate("ListModelsResponse", orjson.loads(listed.content))


class Step(BaseModel):
    explanation: str
    output: str


class Plan(BaseModel):
    title: str = Field(max_length=12)
    when: datetime
    kind: Literal["talk", "demo"]
    steps: list[Step]
    seats: int = Field(ge=3)
    score: float | None


def test_the_mock_answers_in_the_structure_asked_for_in_every_api():
    """`response_format` (json_schema, json_object) and what the other APIs translate to it:
    the SDKs' own parsers read the offline answer, streamed and not."""
    asked = [{"role": "user", "content": "Plan a demo."}]
    with RouterProcess(QUICKSTART) as router:
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key="sk-router-demo", max_retries=0)
        )
        plan = client.chat.completions.parse(model="demo", messages=asked, response_format=Plan)
        parsed = plan.choices[0].message.parsed
        assert parsed is not None and (parsed.kind, parsed.seats, len(parsed.steps)) == (
            "talk",
            3,
            1,
        )
        assert len(parsed.title) == 12 and parsed.when.year == 2026
        with client.chat.completions.stream(
            model="demo", messages=asked, response_format=Plan
        ) as stream:
            assert stream.get_final_completion().choices[0].message.parsed == parsed
        answer = client.responses.parse(model="demo", input="Plan a demo.", text_format=Plan)
        assert answer.output_parsed == parsed
        loose = client.chat.completions.create(
            model="demo", messages=asked, response_format={"type": "json_object"}, max_tokens=2
        )
        text = loose.choices[0].message.content or ""
        assert set(orjson.loads(text)) == {"text"} and loose.choices[0].finish_reason == "stop"
        claude = closed_after_test(
            anthropic.Anthropic(base_url=router.url, api_key="sk-router-demo", max_retries=0)
        )
        schema = {"type": "json_schema", "schema": Plan.model_json_schema()}
        message = claude.messages.create(
            model="demo", max_tokens=100, messages=asked, output_config={"format": schema}
        )
        assert Plan.model_validate_json(message.content[0].text) == parsed  # type: ignore[union-attr]


class Weather(BaseModel):
    city: str
    days: int = Field(ge=1)


def test_the_mock_calls_the_tool_a_request_forces_in_every_api():
    """The README: made to call a tool (`tool_choice` `required` or one named; Anthropic's
    `any` or `tool`), the mock calls it with arguments its schema accepts, streamed and not;
    left to choose (`auto`), it answers in text."""
    asked = [{"role": "user", "content": "Weather in Paris?"}]
    tools = [
        openai.pydantic_function_tool(Weather, name="weather"),
        {
            "type": "function",
            "function": {
                "name": "clock",
                "strict": True,
                "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
            },
        },
    ]
    with RouterProcess(QUICKSTART) as router:
        client = closed_after_test(
            openai.OpenAI(base_url=router.base_url, api_key="sk-router-demo", max_retries=0)
        )
        forced = client.chat.completions.parse(
            model="demo", messages=asked, tools=tools, tool_choice="required"
        )
        choice = forced.choices[0]
        call = choice.message.tool_calls[0]  # type: ignore[index]
        assert (choice.finish_reason, choice.message.content) == ("tool_calls", None)
        assert call.function.name == "weather" and call.id.startswith("call_")
        weather = call.function.parsed_arguments
        assert isinstance(weather, Weather) and weather.days == 1 and weather.city
        with client.chat.completions.stream(
            model="demo",
            messages=asked,
            tools=tools,
            tool_choice={"type": "function", "function": {"name": "clock"}},
        ) as stream:
            streamed = stream.get_final_completion().choices[0]
        assert streamed.finish_reason == "tool_calls"
        assert [
            (c.function.name, c.function.arguments) for c in streamed.message.tool_calls or []
        ] == [("clock", "{}")]
        free = client.chat.completions.create(model="demo", messages=asked, tools=tools)
        assert free.choices[0].finish_reason == "stop" and free.choices[0].message.content
        assert free.choices[0].message.tool_calls is None

        function = {
            "type": "function",
            "name": "weather",
            "parameters": Weather.model_json_schema(),
        }
        answer = client.responses.create(
            model="demo", input="Weather in Paris?", tools=[function], tool_choice="required"
        )
        (item,) = answer.output
        assert item.type == "function_call" and item.name == "weather"
        assert Weather.model_validate_json(item.arguments) == weather
        with client.responses.stream(
            model="demo", input="Weather in Paris?", tools=[function], tool_choice="required"
        ) as events:
            kinds = [event.type for event in events]
            final = events.get_final_response()
        assert "response.function_call_arguments.delta" in kinds
        assert [o.type for o in final.output] == ["function_call"]

        claude = closed_after_test(
            anthropic.Anthropic(base_url=router.url, api_key="sk-router-demo", max_retries=0)
        )
        schema = {"name": "weather", "input_schema": Weather.model_json_schema()}
        message = claude.messages.create(
            model="demo",
            max_tokens=100,
            messages=asked,
            tools=[schema],
            tool_choice={"type": "any"},
        )
        assert message.stop_reason == "tool_use"
        (block,) = message.content
        assert block.type == "tool_use" and Weather.model_validate(block.input) == weather
        with claude.messages.stream(
            model="demo",
            max_tokens=100,
            messages=asked,
            tools=[schema],
            tool_choice={"type": "tool", "name": "weather"},
        ) as messages:
            last = messages.get_final_message()
        assert last.stop_reason == "tool_use" and last.content[0].type == "tool_use"
        assert Weather.model_validate(last.content[0].input) == weather


def test_the_working_name_remains_an_alias_of_the_command():
    """The README: `llm-router`, the working name, remains as an alias of `llm-switchyard`."""
    router = RouterProcess(QUICKSTART)
    assert Path(router.command[0]).name == "llm-switchyard"
    router.command[0] = str(Path(router.command[0]).with_name("llm-router"))
    with (
        router,
        openai.OpenAI(base_url=router.base_url, api_key="sk-router-demo", max_retries=0) as client,
    ):
        reply = client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "Hello!"}]
        )
        assert reply.choices[0].message.content
