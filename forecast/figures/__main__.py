"""Entry point: ``python -m forecast.figures convs [out=docs/convs]``."""

from __future__ import annotations

import logging
import sys

from forecast.figures import convs

log = logging.getLogger("forecast.figures")

FIGURES = {"convs": (convs.write_all, "docs/convs")}


def main(argv: list[str]) -> int:
    """Parse ``NAME [out=DIR]`` and write that set of figures; 2 on a bad command line."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not argv or argv[0] not in FIGURES:
        log.error("usage: python -m forecast.figures {%s} [out=DIR]", ",".join(FIGURES))
        return 2
    write, out = FIGURES[argv[0]]
    for arg in argv[1:]:
        key, sep, value = arg.partition("=")
        if key != "out" or not sep or not value:
            log.error("unknown argument %r: expected out=DIR", arg)
            return 2
        out = value
    write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
