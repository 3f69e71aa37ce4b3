"""How fast a bad setting is refused: the check of a composed config, and the whole
command (process start, imports, composition, check) up to its exit.

Usage::

    python benchmarks/bench_settings.py [--repeats 20] [--cli]

Prints the median time of ``check_train`` on the default config and on bad ones (each
refused), and with ``--cli`` the wall time of ``python train.py model.lr=-1`` to exit 2.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import train  # noqa: E402  (registers the ${project_root:} resolver)
from forecast.settings import SettingsError, check_train  # noqa: E402

BAD = {"model.lr": -1, "horizon": 0, "trainer.max_steps": 0, "model.dropout": 1.0,
       "trainer.foo": 1, "data.splits.val": ["2013-08-01", "2013-10-15"]}


def timed(cfg: dict, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        try:
            check_train(cfg)
        except SettingsError:
            pass
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cli", action="store_true")
    args = parser.parse_args()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        base = OmegaConf.to_container(compose(config_name="train"), resolve=True)
    print(f"check_train, default config (passes): {timed(base, args.repeats) * 1e3:.1f} ms")
    for dotted, value in BAD.items():
        cfg = copy.deepcopy(base)
        *path, last = dotted.split(".")
        node = cfg
        for part in path:
            node = node[part]
        node[last] = value
        print(f"check_train, {dotted}={value!r} (refused): "
              f"{timed(cfg, args.repeats) * 1e3:.1f} ms")
    if args.cli:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, str(Path(train.__file__)), "model.lr=-1"],
                                  cwd=tmp, capture_output=True, text=True)
            wall = time.perf_counter() - start
        print(f"python train.py model.lr=-1: exit {proc.returncode} after {wall:.1f} s")


if __name__ == "__main__":
    main()
