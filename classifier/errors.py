"""Errors of the classifier package, each naming the file or setting concerned."""


class ClassifierError(Exception):
    """Training, loading or inference failed."""


class DatasetMissing(ClassifierError):
    """Fashion-MNIST is neither installed nor downloadable."""


class CheckpointError(ClassifierError):
    """A checkpoint file is missing, corrupt or not a pricelens checkpoint."""


class ConfigError(ClassifierError):
    """A training configuration file, flag or override is invalid; *key* names the setting
    when one is to blame, so the message can say where its value came from."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class ExportError(ClassifierError):
    """ONNX export failed or its output differs from PyTorch's."""
