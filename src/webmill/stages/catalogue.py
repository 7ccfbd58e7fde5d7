"""Every recipe stage: importing this module registers them all in `registry.STAGES`.

Kept out of the package's `__init__` so that importing one stage module (as a worker does when it
unpickles a pipeline) never drags in all the others and their import cycles.
"""

from webmill.stages import (  # noqa: F401
    badwords,
    decontaminate,
    exact_dedup,
    extract,
    language,
    line_dedup,
    line_language,
    minhash_dedup,
    perplexity,
    pii,
    quality,
    quality_classifier,
    refinedweb_lines,
    url_filter,
)
