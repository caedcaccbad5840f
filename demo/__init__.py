"""The demo mall: local shops built from Fashion-MNIST for the demo, tests and benchmarks."""
