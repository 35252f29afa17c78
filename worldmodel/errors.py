"""Errors the CLI reports as one line (the others live beside their data: DatasetError in
``worldmodel.data``, CheckpointError in ``worldmodel.checkpoint``, both ValueErrors)."""


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and where the last good checkpoint is."""
