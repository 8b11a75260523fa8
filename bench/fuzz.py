"""Fuzzing figures: inputs tried per target, crashes (target 0) and where the inputs ended.

    python -m bench.fuzz [--inputs 3000] [--targets mail,corpus,slack,form,zendesk,freshdesk] [--seed N]

Runs the targets of tests/fuzz (the real service on a temp data dir, the same checks as the test
suite) with freshly generated inputs and no shrinking: an input that breaks a check or raises is
counted as a crash, its bytes or repr saved under `bench-data/fuzz-crashes/<target>/`, and the run
goes on. `HYPOTHESIS_PROFILE=fuzz pytest tests/fuzz` runs the same thousands as tests instead
(stopping and shrinking at the first failure).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.fakes.freshdesk import FakeFreshdesk  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.fakes.zendesk import FakeZendesk  # noqa: E402
from tests.fuzz.mailgen import hostile_mail  # noqa: E402
from tests.fuzz.mutate import corpus_files, mutate, mutations  # noqa: E402
from tests.fuzz.targets import MailTarget  # noqa: E402
from tests.fuzz.web_targets import FormTarget, HelpdeskTarget, SlackTarget  # noqa: E402
from tests.fuzz.webgen import form_post, freshdesk_webhook, slack_request, zendesk_webhook  # noqa: E402

TARGETS = ("mail", "corpus", "slack", "form", "zendesk", "freshdesk")
CRASH_DIR = Path(__file__).resolve().parents[1] / "bench-data" / "fuzz-crashes"
KEPT_CRASHES = 20  # per target


def plan(name: str, root: Path, stack: contextlib.ExitStack) -> tuple[Any, st.SearchStrategy, Callable[[Any], Any]]:
    """(target, strategy, feed) for one target name."""
    if name == "mail":
        target = MailTarget(root)
        return target, hostile_mail(), target.feed
    if name == "corpus":
        corpus = corpus_files()
        target = MailTarget(root)
        return target, mutations(len(corpus)), lambda choice: target.feed(mutate(corpus[choice[0]], choice[1], corpus))
    if name == "slack":
        fake = FakeSlack().start()
        stack.callback(fake.stop)
        target = SlackTarget(root, fake)
        return target, slack_request(), target.feed
    if name == "form":
        target = FormTarget(root)
        return target, form_post(), target.feed
    fake = (FakeZendesk if name == "zendesk" else FakeFreshdesk)().start()
    stack.callback(fake.stop)
    target = HelpdeskTarget(root, name, fake)
    return target, zendesk_webhook() if name == "zendesk" else freshdesk_webhook(), target.feed


def keep_crash(name: str, index: int, value: Any, exc: BaseException) -> None:
    folder = CRASH_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(value, bytes):
        (folder / f"{index:05d}.eml").write_bytes(value)
    (folder / f"{index:05d}.txt").write_text(f"{type(exc).__name__}: {exc}\n\n{value!r}\n"[:200_000])


def run(name: str, inputs: int, run_seed: int, root: Path) -> dict[str, Any]:
    crashes: Counter[str] = Counter()
    with contextlib.ExitStack() as stack:
        target, strategy, feed = plan(name, root, stack)

        @seed(run_seed)
        @settings(max_examples=inputs, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def one(value: Any) -> None:
            try:
                feed(value)
            except Exception as exc:  # noqa: BLE001 - counted and kept, the run goes on
                crashes[f"{type(exc).__name__}: {str(exc)[:160]}"] += 1
                if sum(crashes.values()) <= KEPT_CRASHES:
                    keep_crash(name, target.tried, value, exc)

        started = time.monotonic()
        try:
            one()
        finally:
            target.close()
        seconds = time.monotonic() - started
    return {"target": name, "inputs": target.tried, "crashes": sum(crashes.values()), "seconds": seconds,
            "outcomes": target.outcomes, "kinds": crashes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=3000, help="inputs per target")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    run_seed = args.seed if args.seed is not None else random.randrange(2**32)
    logging.basicConfig(level=logging.CRITICAL)  # the targets capture what they check; keep the output readable
    logging.getLogger().handlers[0].setLevel(logging.CRITICAL)  # libraries set their own levels
    print(f"$ python -m bench.fuzz --inputs {args.inputs} --targets {args.targets} --seed {run_seed}", flush=True)
    shutil.rmtree(CRASH_DIR, ignore_errors=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="dsarbot-fuzz-") as tmp:
        for name in args.targets.split(","):
            result = run(name.strip(), args.inputs, run_seed, Path(tmp) / name.strip())
            results.append(result)
            print(f"\n{result['target']}: {result['inputs']} inputs in {result['seconds']:.0f} s, "
                  f"{result['crashes']} crashes", flush=True)
            for outcome, count in result["outcomes"].most_common():
                print(f"    {count:6d}  {outcome}")
            for kind, count in result["kinds"].most_common():
                print(f"    CRASH {count:4d}  {kind}")
    print("\ntarget       inputs  crashes")
    for result in results:
        print(f"{result['target']:<12} {result['inputs']:6d}  {result['crashes']:7d}")
    total = sum(r["crashes"] for r in results)
    if total:
        print(f"\n{total} crashes: inputs kept in {CRASH_DIR}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
