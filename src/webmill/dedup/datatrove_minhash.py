"""datatrove's MinHash module (`datatrove.pipeline.dedup.minhash`), importable without `tokenizers`.

`datatrove.pipeline.dedup/__init__.py` also imports its exact-substring stage, which needs the
`tokenizers` package (not a webmill dependency), so `from datatrove.pipeline.dedup.minhash import ...`
fails here although the MinHash module itself needs nothing extra. When that happens the installed
module's source is executed in this module's namespace (nothing is copied into webmill): its classes
then pickle as `webmill.dedup.datatrove_minhash.*`, which any worker process can import.
"""

from __future__ import annotations

try:
    from datatrove.pipeline.dedup.minhash import (  # noqa: F401
        SENTINEL,
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupSignature,
        read_sigs,
    )
except ImportError:
    import os as _os

    import datatrove.pipeline as _pipeline

    _path = _os.path.join(_os.path.dirname(_pipeline.__file__), "dedup", "minhash.py")
    with open(_path, encoding="utf-8") as _source:
        exec(compile(_source.read(), _path, "exec"), globals())  # noqa: S102 - the installed datatrove module
