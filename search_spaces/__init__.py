"""The built-in search spaces: setup.cfg installs this folder as tuner_app.search_spaces (spaces.search_dirs)."""
