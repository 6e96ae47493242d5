"""``python -m igm`` runs the CLI (how torchrun starts workers: ``torchrun ... -m igm fit ...``)."""

from igm.cli import main

main()
