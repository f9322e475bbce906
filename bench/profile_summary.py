"""Read a py-spy raw (collapsed stacks) profile and print where the time goes.

    python -m bench.profile_summary PROFILE.txt [--top 25] [--match kotally]

Inclusive share: the samples in which a frame appears anywhere on the stack. Self share: the
samples in which it is the innermost frame. Idle samples (threads waiting in the event loop's
selector or in the thread pool's queue) are counted apart, so the shares are of busy time.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

# Leaves where a thread waits: the thread pool's queue, the event loop (uvloop runs in C, so its
# waiting shows as Runner.run), a selector.
IDLE = ("Condition.wait (threading.py", "Runner.run (asyncio/runners.py", "select (selectors.py")


def summarize(path: Path, top: int, match: str | None) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    busy = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        leaf = frames[-1]
        if any(leaf.startswith(marker) for marker in IDLE):
            idle += count
            continue
        busy += count
        own[leaf] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{path.name}: {busy} busy samples, {idle} idle"]
    lines.append("inclusive:")
    for frame, n in inclusive.most_common():
        if match and match not in frame:
            continue
        lines.append(f"  {100 * n / max(busy, 1):5.1f}%  {frame}")
        if len(lines) > top + 2:
            break
    lines.append("self:")
    for frame, n in own.most_common(top):
        lines.append(f"  {100 * n / max(busy, 1):5.1f}%  {frame}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", help="only inclusive frames containing this text")
    args = parser.parse_args()
    for path in args.profiles:
        print(summarize(path, args.top, args.match))


if __name__ == "__main__":
    main()
