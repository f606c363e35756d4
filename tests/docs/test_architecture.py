"""docs/architecture.md describes every part of the core: it cannot drift from the layout."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "docs" / "architecture.md").read_text()


def test_every_subpackage_and_module_is_described() -> None:
    package = ROOT / "router"
    parts = [f"`{p.name}/`" for p in package.iterdir() if (p / "__init__.py").exists()]
    parts += [
        f"`{p.name}`"
        for folder in [package, *(p for p in package.iterdir() if (p / "__init__.py").exists())]
        for p in folder.glob("*.py")
        if p.name != "__init__.py" and folder.name not in ("testing", "translate", "providers")
    ]
    missing = [part for part in parts if part not in TEXT]
    assert not missing, f"docs/architecture.md does not describe {missing}"
