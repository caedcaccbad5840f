"""The CNN: datasets, model, training and inference. Submodules import torch; this does not."""
