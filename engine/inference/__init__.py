"""Using a trained run on new scans: inputs prepared as the run's data was, predictions, exports.

``inputs`` (NumPy only: the dashboard may import it) turns a run into its input
recipe (the dataset's import options from its manifest, the run's
normalisation, the volume shape and class names) and reads new scans through
that recipe, warning when a scan is far from the training data. ``predict``
and ``export`` load the run's Keras model (TensorFlow) and run only in engine
processes: the dashboard calls ``python -m engine predict|export ... --json``
in a subprocess.
"""
