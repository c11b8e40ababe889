"""The `tuner-app` command line, on top of the package: the only code that imports click.

Heavy modules (TensorFlow, MLflow) are imported inside each command, after the root group has decided
how quiet TensorFlow's start-up should be. The command modules attach their commands to the root group.
"""

from tuner_app.cli import (  # noqa: F401 -- they attach commands
    data_commands,
    inspect_commands,
    model_commands,
    search_commands,
    server_commands,
    ui_commands,
)
from tuner_app.cli.root import cli


def main() -> None:
    cli(prog_name="tuner-app")
