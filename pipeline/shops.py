"""Which shop specs exist: the built-in (demo) ones, and the user's in ``<home>/shops/``,
which win on a name clash."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crawler.errors import SpecError
from crawler.spec import ShopSpec, builtin_spec_paths, load_spec
from pipeline.errors import PipelineError
from pipeline.settings import Home


@dataclass(frozen=True)
class SpecFile:
    name: str
    path: Path
    builtin: bool


class UnknownShop(PipelineError):
    """Shops named that have no spec; *known* are the names that have one."""

    def __init__(self, names: list[str], known: list[str]):
        self.names, self.known = names, known
        super().__init__(f"unknown shop {', '.join(map(repr, names))}; known: {', '.join(known)}")


def spec_files(home: Home) -> dict[str, SpecFile]:
    files = {name: SpecFile(name, path, True) for name, path in builtin_spec_paths().items()}
    if home.shops.is_dir():
        for path in sorted(home.shops.glob("*.toml")):
            files[path.stem] = SpecFile(path.stem, path, False)
    return files


def resolve_specs(
    home: Home,
    names: tuple[str, ...],
    base_url: str | None = None,
    base_urls: dict[str, str] | None = None,
) -> list[ShopSpec]:
    """The specs to crawl: the named ones, else every user spec. Each file is validated
    before anything runs, so a bad spec stops the command before any browser starts.
    *base_url* (--base-url) moves the one named shop; *base_urls* (pricelens.toml's
    [shops.NAME]) move theirs."""
    files = spec_files(home)
    if not names:
        names = tuple(name for name, f in files.items() if not f.builtin)
        if not names:
            raise PipelineError(
                f"no shop specs in {home.shops}; add TOML files there, or name built-in shops "
                f"with --shop ({', '.join(n for n, f in files.items() if f.builtin)})"
            )
    unknown = [n for n in names if n not in files]
    if unknown:
        raise UnknownShop(unknown, sorted(files))
    if base_url and len(names) != 1:
        raise PipelineError("--base-url needs exactly one --shop")
    specs = [load_spec_file(files[name]) for name in names]
    moved = base_urls or {}
    specs = [spec.with_base_url(moved[spec.name]) if spec.name in moved else spec for spec in specs]
    try:
        specs = [spec.with_base_url(base_url) for spec in specs] if base_url else specs
    except ValueError as exc:
        raise PipelineError(f"--base-url: {exc}") from None
    for spec in specs:
        if problem := spec.unreachable():
            raise SpecError(problem)
    return specs


def load_spec_file(file: SpecFile) -> ShopSpec:
    """The spec in *file*, whose ``name`` must be the file's: one name for --shop, the
    database and reports."""
    spec = load_spec(file.path)
    if spec.name != file.name:
        raise SpecError(
            f"{file.path}: key 'name': {spec.name!r} differs from the file name; rename the file "
            f"to {spec.name}.toml or the shop to {file.name!r}"
        )
    return spec
