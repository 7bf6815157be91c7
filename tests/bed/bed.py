"""Test bed CLI (and import point for pytest fixtures / molecule playbooks).

  bed.py build [IMAGE ...]
  bed.py up --engine docker|podman [--os bookworm|trixie] --name NAME --workdir DIR [--owner-pid PID]
  bed.py down --name NAME
  bed.py gc [--max-age SECONDS] [--all]
  bed.py exec --name NAME -- COMMAND ...
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bedlib.images import IMAGES, build_images  # noqa: E402
from bedlib.shell import BedError  # noqa: E402
from bedlib.target import (  # noqa: E402,F401  (re-exported for fixtures)
    ENGINES, TARGET_IMAGES, Target, down, down_by_name, exec_in_target, gc, load_target, restart, up)

# The API pytest fixtures, molecule playbooks and scripts/sandbox import from here.
__all__ = ["ENGINES", "IMAGES", "TARGET_IMAGES", "BedError", "Target", "build_images", "down", "down_by_name", "exec_in_target",
           "gc", "load_target", "restart", "up"]


def cmd_build(args: argparse.Namespace) -> int:
    start = time.monotonic()
    results = build_images(args.images or None)
    for result in results.values():
        state = "built" if result.built else "cached"
        print(f"{result.name:10} {state:6} {result.seconds:7.1f}s  {result.ref}"
              f"  (hash {result.recipe_hash})")
    print(f"build total {time.monotonic() - start:.1f}s")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    target = up(args.name, args.engine, Path(args.workdir), owner_pid=args.owner_pid, os_name=args.os)
    for step, seconds in target.timings.items():
        print(f"{step:22} {seconds:7.1f}s")
    print(f"target {target.name} os={target.os} engine={target.engine} ssh=127.0.0.1:{target.ssh_port}"
          f" ports={target.ports} ip={target.bridge_ip}")
    print(f"inventory {target.workdir / 'inventory.yml'}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    down_by_name(args.name)
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    for removed in gc(max_age=args.max_age, everything=args.all):
        print(f"removed {removed}")
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    proc = exec_in_target(load_target(args.name), command, check=False)
    sys.stdout.buffer.write(proc.stdout)
    sys.stderr.buffer.write(proc.stderr)
    return proc.returncode


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = main.add_subparsers(dest="action", required=True)
    build = sub.add_parser("build", help="build or reuse cached images")
    build.add_argument("images", nargs="*", help=f"subset of {', '.join(IMAGES)}")
    build.set_defaults(func=cmd_build)
    up_p = sub.add_parser("up", help="start a target server")
    up_p.add_argument("--engine", choices=["docker", "podman"], required=True)
    up_p.add_argument("--os", choices=list(TARGET_IMAGES), default="bookworm",
                      help="Debian release of the target (trixie: podman 5.4 with Quadlet)")
    up_p.add_argument("--name", required=True, help="unique per run; prefixed hearth-bed-")
    up_p.add_argument("--workdir", required=True, help="gets key, inventory.yml, target.json")
    up_p.add_argument("--owner-pid", type=int, default=None,
                      help="process whose death makes the target garbage for `gc` "
                           "(default: $HEARTH_BED_OWNER_PID, else only --max-age applies)")
    up_p.set_defaults(func=cmd_up)
    down_p = sub.add_parser("down", help="remove a target, its volumes and keys")
    down_p.add_argument("--name", required=True)
    down_p.set_defaults(func=cmd_down)
    gc_p = sub.add_parser("gc", help="remove leftovers of dead or old runs")
    gc_p.add_argument("--max-age", type=int, default=3 * 3600,
                      help="targets without a live owner older than this go (seconds)")
    gc_p.add_argument("--all", action="store_true", help="remove every bed target")
    gc_p.set_defaults(func=cmd_gc)
    exec_p = sub.add_parser("exec", help="run a command in a target (podman exec)")
    exec_p.add_argument("--name", required=True)
    exec_p.add_argument("command", nargs=argparse.REMAINDER)
    exec_p.set_defaults(func=cmd_exec)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BedError as error:
        print(f"bed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
