"""``python -m forecast.predict checkpoint=PATH inputs=... output_dir=DIR [--verbose]``: the
Hydra shell around :func:`forecast.predict.run` (Hydra is imported here only)."""

from __future__ import annotations

import logging
import signal
import sys

from forecast.cli import first_missing, one_line_errors, run_hydra, take_verbose_flag
from forecast.predict.command import run
from forecast.predict.summary import EXIT_NOTHING_RAN, EXIT_SOME_FAILED

log = logging.getLogger("forecast.predict")
USAGE = "python -m forecast.predict checkpoint=PATH inputs=GLOB_OR_DIR_OR_LIST output_dir=DIR"


def main() -> int:
    """Parse the command line with Hydra, run, return the exit code."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig, OmegaConf

    take_verbose_flag()
    state = {"code": EXIT_NOTHING_RAN, "started": False}

    @hydra.main(version_base="1.3", config_path="../../configs", config_name="predict")
    def _main(cfg: DictConfig) -> None:
        key = first_missing(cfg, ("checkpoint", "inputs"))
        if key is not None:
            log.error("%s is required: %s", key, USAGE)
            return
        inputs = cfg.inputs
        if not isinstance(inputs, str):
            inputs = [str(v) for v in OmegaConf.to_container(inputs, resolve=True)]
        state["started"] = True
        with one_line_errors(log, code=EXIT_SOME_FAILED):
            state["code"] = run(
                cfg.checkpoint, inputs, cfg.output_dir or HydraConfig.get().runtime.output_dir,
                cfg.mode, cfg.batch_size, cfg.device, cfg.max_file_mb, cfg.max_rows,
                cfg.fsync_each)

    try:
        failed = run_hydra(_main,
                           lambda: EXIT_SOME_FAILED if state["started"] else EXIT_NOTHING_RAN)
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM: one line, the shell's usual code
        signum = getattr(err, "signum", int(signal.SIGINT))
        log.error("stopped by %s; summary.csv names the files not forecast",
                  signal.Signals(signum).name)
        return 128 + signum
    return state["code"] if failed is None else failed


if __name__ == "__main__":
    sys.exit(main())
