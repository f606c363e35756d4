"""The OpenAI OpenAPI check is an extra where the description is available: without it the
API tests still run all their own assertions, and only that check is left out."""

import pytest

from router.testing.openapi import ENV_VAR, NoSpecValidator, OpenAPIValidator, optional_validator


def test_without_the_description_the_check_is_left_out_not_the_test(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    validator = optional_validator()
    assert isinstance(validator, NoSpecValidator)
    validator.validate("CreateChatCompletionResponse", {"not": "an answer"})
    assert validator.errors("ErrorResponse", {}) == []
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing.yaml"))
    assert isinstance(optional_validator(), NoSpecValidator)


def test_with_a_description_every_deviation_fails(monkeypatch, tmp_path):
    spec = tmp_path / "openapi.yaml"
    spec.write_text(
        "components:\n  schemas:\n    ErrorResponse:\n      type: object\n"
        "      required: [error]\n      properties: {error: {type: object}}\n"
    )
    monkeypatch.setenv(ENV_VAR, str(spec))
    validator = optional_validator()
    assert isinstance(validator, OpenAPIValidator)
    validator.validate("ErrorResponse", {"error": {}})
    with pytest.raises(AssertionError, match="not a valid ErrorResponse"):
        validator.validate("ErrorResponse", {"message": "x"})
