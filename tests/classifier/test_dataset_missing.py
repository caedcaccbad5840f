"""Fashion-MNIST absent: not installed and not allowed to download, or offline. Either way
one clear message saying what to install or set (the download is real, aimed at a closed
loopback port, as it is offline)."""

from __future__ import annotations

import pytest
from torchvision.datasets import FashionMNIST

import classifier.fashion_mnist as fashion_mnist
from classifier.fashion_mnist import DatasetMissing, locate
from tests.remote_chromedriver import free_port


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    monkeypatch.delenv("PRICELENS_FASHION_MNIST", raising=False)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "not-installed")
    return tmp_path


def test_absent_and_no_download_folder_says_what_to_install(nowhere):
    with pytest.raises(DatasetMissing) as caught:
        locate(nowhere / "given")
    message = str(caught.value)
    assert str(nowhere / "given") in message and str(nowhere / "not-installed") in message
    assert "dataset-fashion-mnist" in message and "PRICELENS_FASHION_MNIST" in message


def test_offline_the_download_fails_with_what_to_install(nowhere, monkeypatch):
    monkeypatch.setattr(FashionMNIST, "mirrors", [f"http://127.0.0.1:{free_port()}/"])
    with pytest.raises(DatasetMissing) as caught:
        locate(download_dir=nowhere / "datasets")
    message = str(caught.value)
    assert f"could not be downloaded into {nowhere / 'datasets'}" in message
    assert "dataset-fashion-mnist" in message and "PRICELENS_FASHION_MNIST" in message
