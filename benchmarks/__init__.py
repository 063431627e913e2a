"""Throughput benchmarks: Keras on each backend against hand-written framework loops.

`python -m benchmarks [--quick] [--backends jax,tensorflow,torch] [--out DIR]`
"""
