"""Playbooks: per right, which sources to ask, in which order, and which records the answer keeps.

`playbooks/<right>.yaml` lists steps. A step names a configured source (`source: shop`), every
configured source not named elsewhere (`sources: all`), or a script beside the playbook
(`script: loyalty_points.py`, with its `entities`). Order follows the identifiers: a step that
accepts a kind another step publishes (customer_id, visitor_id ...) runs after it; `after:` adds an
explicit dependency. `extends: access` reuses another playbook's steps; `portable_only: true`
keeps only what Art. 20 covers (see Processing.portable). Loading and binding validate everything.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from bot.config import ConfigError
from bot.identity import check_kind
from bot.models import Right
from integrations.base import Source

STEP_KEYS = {"source", "sources", "script", "name", "timeout", "after", "accepts", "publishes", "entities",
             "options", "system"}
PLAYBOOK_KEYS = {"right", "description", "extends", "steps", "portable_only"}


class PlaybookError(ConfigError):
    """A playbook cannot work; the message names the file, the step and the fix."""


@dataclass(frozen=True)
class Step:
    file: Path
    index: int
    source: str = ""  # a configured source name, or "*" for all the others
    script: str = ""
    name: str = ""
    timeout: float | None = None
    after: tuple[str, ...] = ()
    accepts: tuple[str, ...] | None = None
    publishes: tuple[str, ...] | None = None
    settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)  # for script steps

    @property
    def where(self) -> str:
        return f"{self.file}: step {self.index + 1}"


@dataclass
class Playbook:
    right: str
    file: Path
    description: str
    steps: list[Step]
    extends: str = ""
    portable_only: bool = False


@dataclass(frozen=True)
class PlannedStep:
    """One source to run for a gathering, with what it waits for."""

    name: str
    source: Source
    timeout: float
    accepts: frozenset[str]
    publishes: frozenset[str]
    deps: frozenset[str]


def _step(file: Path, index: int, raw: Any) -> Step:
    where = f"{file}: step {index + 1}"
    if not isinstance(raw, dict):
        raise PlaybookError(f"{where}: expected a mapping with source:, sources: all or script:")
    unknown = sorted(set(raw) - STEP_KEYS)
    if unknown:
        raise PlaybookError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(STEP_KEYS))}")
    chosen = [k for k in ("source", "sources", "script") if raw.get(k)]
    if len(chosen) != 1:
        raise PlaybookError(f"{where}: give exactly one of source: NAME, sources: all, script: FILE.py")
    if raw.get("sources") not in (None, "all"):
        raise PlaybookError(f"{where}: sources: only takes the value all")
    try:
        accepts = tuple(check_kind(k, where) for k in raw["accepts"]) if "accepts" in raw else None
        publishes = tuple(check_kind(k, where) for k in raw["publishes"]) if "publishes" in raw else None
    except ValueError as exc:
        raise PlaybookError(str(exc)) from None
    script = str(raw.get("script") or "")
    settings: dict[str, Any] = {}
    if script:
        settings = {"name": raw.get("name") or Path(script).stem, "type": "script", "script": script,
                    "entities": raw.get("entities") or [], "options": raw.get("options") or {}}
        for key in ("accepts", "publishes", "system", "timeout"):
            if key in raw:
                settings[key] = raw[key]
    timeout = raw.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise PlaybookError(f"{where}: timeout must be a positive number of seconds")
    return Step(file=file, index=index, source="*" if raw.get("sources") else str(raw.get("source") or ""),
                script=script, name=str(settings.get("name") or raw.get("source") or ""),
                timeout=float(timeout) if timeout else None, after=tuple(raw.get("after") or ()),
                accepts=accepts, publishes=publishes, settings=settings)


def _read(path: Path) -> Playbook:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise PlaybookError(f"{path}: not valid YAML ({exc})") from None
    unknown = sorted(set(raw) - PLAYBOOK_KEYS)
    if unknown:
        raise PlaybookError(f"{path}: unknown key {unknown[0]!r}; known: {', '.join(sorted(PLAYBOOK_KEYS))}")
    right = raw.get("right")
    if right not in {r.value for r in Right}:
        raise PlaybookError(f"{path}: right must be one of {', '.join(r.value for r in Right)}")
    steps = [_step(path, i, s) for i, s in enumerate(raw.get("steps") or [])]
    if not steps and not raw.get("extends"):
        raise PlaybookError(f"{path}: no steps; add steps: [{{sources: all}}] or extends: access")
    return Playbook(right=right, file=path, description=str(raw.get("description") or ""), steps=steps,
                    extends=str(raw.get("extends") or ""), portable_only=bool(raw.get("portable_only", False)))


class Playbooks:
    """All playbooks of a directory, bound to the configured sources by `bind`."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise PlaybookError(f"playbook directory {self.directory} not found; set [playbooks] directory")
        self.by_right: dict[str, Playbook] = {}
        for path in sorted(self.directory.glob("*.yaml")):
            playbook = _read(path)
            if playbook.right in self.by_right:
                raise PlaybookError(f"{path}: right {playbook.right!r} already has "
                                    f"{self.by_right[playbook.right].file}")
            self.by_right[playbook.right] = playbook
        missing = sorted({r.value for r in Right} - set(self.by_right))
        if missing:
            raise PlaybookError(f"{self.directory}: no playbook for right {missing[0]!r}; add "
                                f"{missing[0]}.yaml (e.g. right: {missing[0]} and extends: access)")
        for right in self.by_right:
            self.steps_for(right)  # refuses unknown or circular extends now
        self._sources: dict[str, Source] = {}
        self._timeouts: dict[str, float] = {}

    def steps_for(self, right: str, seen: tuple[str, ...] = ()) -> list[Step]:
        playbook = self.by_right.get(right)
        if playbook is None:
            raise PlaybookError(f"{self.directory}: no playbook for right {right!r}")
        if right in seen:
            raise PlaybookError(f"{playbook.file}: extends goes round in a circle ({' -> '.join(seen + (right,))})")
        inherited = self.steps_for(playbook.extends, seen + (right,)) if playbook.extends else []
        return inherited + playbook.steps

    def portable_only(self, right: str) -> bool:
        return self.by_right[right].portable_only

    def script_settings(self) -> list[dict[str, Any]]:
        """Settings of every script step, to build them like configured sources."""
        out: dict[str, dict[str, Any]] = {}
        for playbook in self.by_right.values():
            for step in playbook.steps:
                if step.script:
                    out.setdefault(step.name, step.settings)
        return list(out.values())

    def bind(self, sources: dict[str, Source], timeouts: dict[str, float]) -> None:
        """Attach the runnable sources (configured + scripts); check every right can be planned."""
        self._sources = dict(sources)
        self._timeouts = dict(timeouts)
        for name, source in sources.items():
            try:
                for kind in [*source.accepts(), *source.publishes()]:
                    check_kind(kind, f"source {name!r}")
            except ValueError as exc:
                raise PlaybookError(str(exc)) from None
        for right in self.by_right:
            for step in self.steps_for(right):
                if step.source not in ("", "*") and step.source not in sources:
                    raise PlaybookError(f"{step.where}: source {step.source!r} is not configured in [playbooks] "
                                        f"sources (configured: {', '.join(sorted(sources)) or 'none'})")
                for name in step.after:
                    if name not in sources:
                        raise PlaybookError(f"{step.where}: after names {name!r}, which is not a source")
            self.plan([right])
        self.plan(list(self.by_right))

    def timeout_of(self, name: str) -> float:
        return self._timeouts.get(name, 30.0)

    def plan(self, rights: Iterable[str]) -> dict[str, PlannedStep]:
        """The steps to run for these rights (each source once), with their dependencies."""
        chosen: dict[str, Step] = {}
        wildcard: Step | None = None
        for right in rights:
            for step in self.steps_for(right):
                if step.source == "*":
                    wildcard = wildcard or step
                else:
                    chosen.setdefault(step.name, step)
        if wildcard is not None:
            for name in self._sources:
                if name not in chosen and not self._is_script(name):
                    chosen[name] = Step(file=wildcard.file, index=wildcard.index, source=name, name=name,
                                        timeout=wildcard.timeout)
        planned: dict[str, tuple[Step, frozenset[str], frozenset[str]]] = {}
        for name, step in chosen.items():
            source = self._sources[name]
            accepts = frozenset(step.accepts if step.accepts is not None else source.accepts())
            publishes = frozenset(step.publishes if step.publishes is not None else source.publishes())
            planned[name] = (step, accepts, publishes)
        result = {}
        for name, (step, accepts, own) in planned.items():
            # A source is the authority on the kinds it publishes: it takes only verified values of
            # those (another shop's customer 42 is not its customer 42), so it waits for nobody for them.
            wanted = accepts - own
            deps = {other for other, (_, _, pub) in planned.items() if other != name and pub & wanted}
            deps |= {a for a in step.after if a in planned}
            result[name] = PlannedStep(name=name, source=self._sources[name],
                                       timeout=step.timeout or self.timeout_of(name),
                                       accepts=accepts, publishes=planned[name][2], deps=frozenset(deps))
        _check_acyclic(result)
        return result

    def _is_script(self, name: str) -> bool:
        return any(s.get("name") == name for s in self.script_settings())


def _check_acyclic(steps: dict[str, PlannedStep]) -> None:
    done: set[str] = set()
    while len(done) < len(steps):
        ready = [n for n, s in steps.items() if n not in done and s.deps <= done]
        if not ready:
            stuck = sorted(set(steps) - done)
            raise PlaybookError(f"sources {', '.join(stuck)} wait for each other's identifiers in a circle; set "
                                "accepts: or publishes: on one of their playbook steps to break it")
        done.update(ready)


def order(steps: dict[str, PlannedStep]) -> list[str]:
    """A run order respecting dependencies (for display and sequential runs)."""
    out: list[str] = []
    while len(out) < len(steps):
        out.extend(sorted(n for n, s in steps.items() if n not in out and s.deps <= set(out)))
    return out
