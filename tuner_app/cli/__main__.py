"""`python -m tuner_app.cli`."""

from tuner_app.cli import main

main()
