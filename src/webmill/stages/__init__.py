"""Recipe stages: webmill's own datatrove steps and the catalogue of stages a recipe can name
(`webmill.stages.catalogue`, loaded by `registry.all_stages()`)."""
