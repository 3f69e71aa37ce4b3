"""The default task for benchmarks: the training config tree, its data and an untrained model."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

import train  # noqa: E402,F401  (registers the ${project_root:} resolver)
from forecast.data import ForecastDataModule  # noqa: E402
from forecast.module import ForecastModule, load_checkpoint  # noqa: E402


def default_task(overrides: list[str], checkpoint: str | None = None
                 ) -> tuple[ForecastDataModule, ForecastModule]:
    """Data module (set up) and model of ``python train.py <overrides>``; weights are the
    checkpoint's, or untrained (timings do not depend on them)."""
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    dm: ForecastDataModule = instantiate(cfg.data, _convert_="all")
    spec = dm.load()
    if checkpoint:
        model = load_checkpoint(checkpoint)
    else:
        model = instantiate(cfg.model, n_features=spec.n_features, data_spec=spec.to_dict(),
                            _convert_="all").eval()
    dm.set_history(model.receptive_field - 1)
    dm.setup("fit")
    return dm, model
