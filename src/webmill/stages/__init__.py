"""Recipe stages. Importing this package registers every stage in `registry.STAGES`."""

from webmill.stages import extract, language, quality, refinedweb_lines, url_filter  # noqa: F401
