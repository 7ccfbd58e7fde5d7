"""User-facing errors: the CLI prints them as one line, without a traceback."""


class WebmillError(Exception):
    """A mistake the user can fix (bad recipe, missing file, missing model)."""


class RecipeError(WebmillError):
    """A recipe problem, located by file, stage and key."""

    def __init__(self, path, message: str, stage: str | None = None, key: str | None = None):
        where = str(path)
        if stage is not None:
            where += f", stage {stage}"
        if key is not None:
            where += f", key '{key}'"
        super().__init__(f"{where}: {message}")
        self.path, self.stage, self.key = path, stage, key
