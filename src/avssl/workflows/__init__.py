"""Workflows: jobs made of several runs and evaluations (the demo, sweeps, long-clip retraining, filter
pictures); each uses the library below it and adds no training or evaluation of its own.

    from avssl.workflows.demo import run_demo
"""
