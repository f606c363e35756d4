"""llm-switchyard: a declarative, OpenAI-compatible LLM router."""

__version__ = "0.1.0"
