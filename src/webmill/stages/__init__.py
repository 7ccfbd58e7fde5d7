"""Recipe stages. Importing this package registers every stage in `registry.STAGES`."""

from webmill.stages import exact_dedup, extract, language, quality, refinedweb_lines, url_filter  # noqa: F401
