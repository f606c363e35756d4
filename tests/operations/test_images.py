"""Images, image edits and image variations through `llm-switchyard serve` with the official
`openai` SDK and fake OpenAI upstreams: answers passed through, streamed partial images,
uploads sent again to a fallback, edits by reference in JSON, and limits counted in images."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest

from router.testing import Reply
from router.testing.media import PNG, PNG_B64, image_reply
from tests.operations.served import PATHS, SDK_DEPRECATED

# -- images ---------------------------------------------------------------------------


def test_images_fall_over_to_the_backup_and_pass_b64_json_through(served):
    served.limited("images", image_reply(2, b64=True))
    raw = served.client.images.with_raw_response.generate(
        model="images-fallback", prompt="an otter", n=2, response_format="b64_json"
    )
    images = raw.parse()
    assert [i.b64_json for i in images.data] == [PNG_B64, PNG_B64]
    assert raw.headers["x-router-provider"] == "backup"
    assert raw.headers["x-router-attempts"] == "2"
    (sent,) = served.requests("backup", "images")
    assert sent.json() == {
        "model": "up-b",
        "prompt": "an otter",
        "n": 2,
        "response_format": "b64_json",
    }
    assert sent.headers["authorization"] == "Bearer sk-backup"


def test_images_pass_a_url_answer_through(served):
    served.upstream.add("/primary/v1/images/generations", image_reply(1, b64=False))
    images = served.client.images.generate(model="images-only", prompt="an otter")
    assert images.data[0].url == "https://images.example/fake.png"


def _image_events(task: str, partials: int) -> Reply:
    """OpenAI's streamed images answer: `partials` partial images, then the image."""
    events = [
        {"type": f"{task}.partial_image", "b64_json": PNG_B64, "partial_image_index": i}
        for i in range(partials)
    ]
    events.append({"type": f"{task}.completed", "b64_json": PNG_B64})
    shape = {"background": "opaque", "created_at": 1, "output_format": "png", "quality": "low"}
    frames = [
        b"event: "
        + e["type"].encode()
        + b"\ndata: "
        + orjson.dumps({**e, **shape, "size": "1024x1024"})
        + b"\n\n"
        for e in events
    ]
    return Reply(200, {"content-type": "text/event-stream"}, frames=frames, delay=0.01)


def test_streamed_images_pass_their_partial_images_through_after_a_fallback(served):
    """`stream` with `partial_images`: OpenAI's image events reach the SDK as they come."""
    served.limited("images", _image_events("image_generation", 2))
    stream = served.client.images.generate(
        model="images-fallback", prompt="an otter", stream=True, partial_images=2
    )
    kinds = [event.type for event in stream]
    assert kinds == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    (sent,) = served.requests("backup", "images")
    assert sent.json() == {
        "model": "up-b",
        "prompt": "an otter",
        "stream": True,
        "partial_images": 2,
    }


# -- image edits ----------------------------------------------------------------------


def test_image_edits_send_every_image_and_the_mask_again_to_the_backup(served):
    served.limited("image_edits", image_reply(2, b64=True))
    first, second, mask = PNG, PNG + b"second", PNG + b"mask"
    raw = served.client.images.with_raw_response.edit(
        model="image_edits-fallback",
        image=[("a.png", first, "image/png"), ("b.png", second, "image/png")],
        mask=("m.png", mask, "image/png"),
        prompt="an otter in a hat",
        n=2,
        response_format="b64_json",
    )
    assert [i.b64_json for i in raw.parse().data] == [PNG_B64, PNG_B64]
    assert raw.headers["x-router-provider"] == "backup"
    assert raw.headers["x-router-attempts"] == "2"
    for provider, model in (("primary", "up-a"), ("backup", "up-b")):
        (sent,) = served.requests(provider, "image_edits")
        body = sent.body
        for name, filename, content in (
            ("image[]", "a.png", first),
            ("image[]", "b.png", second),
            ("mask", "m.png", mask),
        ):
            part = f'name="{name}"; filename="{filename}"\r\nContent-Type: image/png\r\n\r\n'
            assert part.encode() + content + b"\r\n" in body
        assert f'name="model"\r\n\r\n{model}\r\n'.encode() in body
        assert b'name="n"\r\n\r\n2\r\n' in body
        assert b'name="prompt"\r\n\r\nan otter in a hat\r\n' in body
    assert sent.headers["authorization"] == "Bearer sk-backup"


def test_a_streamed_image_edit_passes_its_events_through(served):
    served.upstream.add("/primary/v1/images/edits", _image_events("image_edit", 1))
    stream = served.client.images.edit(
        model="image_edits-only",
        image=("a.png", PNG, "image/png"),
        prompt="a hat",
        stream=True,
        partial_images=1,
    )
    assert [e.type for e in stream] == ["image_edit.partial_image", "image_edit.completed"]
    (sent,) = served.requests("primary", "image_edits")
    assert b'name="stream"\r\n\r\ntrue\r\n' in sent.body
    assert b'name="partial_images"\r\n\r\n1\r\n' in sent.body


def test_an_image_edit_by_reference_goes_as_json_and_counts_its_images(served):
    """OpenAI's other shape of an edit: JSON, with `images` (and a `mask`) as references."""
    served.limited("image_edits", image_reply(2, b64=True))
    body = {
        "model": "image_edits-fallback",
        "prompt": "an otter in a hat",
        "images": [{"image_url": "https://images.example/otter.png"}, {"file_id": "file-1"}],
        "mask": {"file_id": "file-2"},
        "n": 2,
    }
    answer = httpx.post(served.router.base_url + "/images/edits", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    assert [i["b64_json"] for i in answer.json()["data"]] == [PNG_B64, PNG_B64]
    assert answer.headers["x-router-provider"] == "backup"
    (sent,) = served.requests("backup", "image_edits")
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {**body, "model": "up-b"}
    served.upstream.reset()  # (the primary's 429 stays queued while it is cooling down)
    served.upstream.set_default("/primary/v1/images/edits", image_reply(1))
    limited = {**body, "model": "image_edits-json-limited"}  # 2 images: 2,000 of 2,000
    first = httpx.post(served.router.base_url + "/images/edits", json=limited, timeout=10)
    assert first.status_code == 200
    again = httpx.post(served.router.base_url + "/images/edits", json=limited, timeout=10)
    assert again.status_code == 429 and "two-images" in again.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "x"}, "images"),
        ({"prompt": "x", "images": []}, "images"),
        ({"prompt": "x", "images": [{"url": "https://x.test/a.png"}]}, "images[0]"),
        ({"prompt": "x", "images": [{"file_id": "f"}], "mask": "m.png"}, "mask"),
        ({"prompt": "x", "images": [{"file_id": "f"}], "n": 11}, "n"),
        ({"prompt": "x", "images": [{"file_id": "f"}], "stream": "yes"}, "stream"),
        ({"images": [{"file_id": "f"}]}, "prompt"),
    ],
)
def test_an_image_edit_in_json_without_what_it_needs_is_a_400(served, body, param):
    body = {"model": "image_edits-only", **body}
    answer = httpx.post(served.router.base_url + "/images/edits", json=body, timeout=10)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param
    assert not served.upstream.requests


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"prompt": "x"}, "image"),
        ({"prompt": "x", "image": "a.png"}, "image"),  # a text field, not a file
        ({"prompt": "x", "n": "11"}, "n"),
        ({"prompt": "x", "n": "two"}, "n"),
        ({"prompt": "x", "stream": "yes"}, "stream"),
        ({}, "prompt"),
    ],
)
def test_an_image_edit_form_without_what_it_needs_is_a_400(served, fields, param):
    _refused_form(served, "image_edits", fields, param)


def _refused_form(served, op: str, fields: dict[str, str], param: str) -> None:
    """A form of `op` with `fields` (and an image, unless the image is what is wrong) is a
    400 naming `param`, and reaches no upstream."""
    parts = {"model": (None, f"{op}-only")}
    parts.update({name: (None, value) for name, value in fields.items()})
    if param != "image":
        parts["image"] = ("a.png", PNG, "image/png")
    answer = httpx.post(served.router.base_url + PATHS[op], files=parts, timeout=10)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param
    assert not served.upstream.requests


# -- image variations -----------------------------------------------------------------


@SDK_DEPRECATED
def test_image_variations_send_the_image_again_to_the_backup(served):
    served.limited("image_variations", image_reply(2, b64=False))
    image = PNG + b"to vary"
    raw = served.client.images.with_raw_response.create_variation(
        model="image_variations-fallback",
        image=("otter.png", image, "image/png"),
        n=2,
        size="256x256",
    )
    assert [i.url for i in raw.parse().data] == ["https://images.example/fake.png"] * 2
    assert raw.headers["x-router-provider"] == "backup"
    for provider, model in (("primary", "up-a"), ("backup", "up-b")):
        (sent,) = served.requests(provider, "image_variations")
        part = 'name="image"; filename="otter.png"\r\nContent-Type: image/png\r\n\r\n'
        assert part.encode() + image + b"\r\n" in sent.body
        assert f'name="model"\r\n\r\n{model}\r\n'.encode() in sent.body
        assert b'name="n"\r\n\r\n2\r\n' in sent.body
        assert b'name="size"\r\n\r\n256x256\r\n' in sent.body


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({}, "image"),
        ({"image": "otter.png"}, "image"),  # a text field, not a file
        ({"n": "0"}, "n"),
        ({"n": "11"}, "n"),
    ],
)
def test_an_image_variation_form_without_what_it_needs_is_a_400(served, fields, param):
    _refused_form(served, "image_variations", fields, param)


@SDK_DEPRECATED
def test_an_images_limit_counts_the_variations_asked_for(served):
    served.upstream.set_default("/primary/v1/images/variations", image_reply(1))
    image = ("a.png", PNG, "image/png")
    served.client.images.create_variation(model="image_variations-limited", image=image, n=2)
    with pytest.raises(openai.RateLimitError) as caught:
        served.client.images.create_variation(model="image_variations-limited", image=image)
    assert "two-images" in caught.value.message


# -- limits in images ---------------------------------------------------------------


def test_an_images_limit_counts_images(served):
    served.upstream.set_default("/primary/v1/images/generations", image_reply(1))
    served.client.images.generate(model="images-limited", prompt="x", n=2)  # 2,000 of 2,000
    with pytest.raises(openai.RateLimitError) as caught:
        served.client.images.generate(model="images-limited", prompt="x")
    assert "two-images" in caught.value.message


def test_an_images_limit_counts_the_images_an_edit_asks_for(served):
    served.upstream.set_default("/primary/v1/images/edits", image_reply(1))
    image = ("a.png", PNG, "image/png")
    served.client.images.edit(model="image_edits-limited", image=image, prompt="x", n=2)
    with pytest.raises(openai.RateLimitError) as caught:  # ("2" in the form: 2,000 of 2,000)
        served.client.images.edit(model="image_edits-limited", image=image, prompt="x")
    assert "two-images" in caught.value.message
    assert len(served.requests("primary", "image_edits")) == 1
