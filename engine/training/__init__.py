"""Training: tf.data pipelines, optimizers and losses, the store recorder, and ``execute_run``.

Importing this package imports TensorFlow; the dashboard never does.
"""

from engine.training.run import execute_run, summarize

__all__ = ["execute_run", "summarize"]
