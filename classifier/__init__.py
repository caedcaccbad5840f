"""The CNN: datasets, model, training and inference. Submodules import torch; this does not.

It does set OpenMP's wait policy before torch loads (a user's own setting wins): by default
torch's idle threads spin, and on a machine where anything else runs (a crawl's browsers, a
second job) a 2-thread forward pass then waits for a descheduled spinner - measured 60-90x
slower for single photos with one other busy process on 2 cores; on an idle machine passive
threads cost a training run about 7% (see the README)."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
