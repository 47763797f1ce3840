"""Benchmarks that print figures: ``python -m engine bench [train|import]``.

``cli`` runs the lab against a plain Keras script (each arm in its own process, ``bench-arm``: ``arm``) and
times a DICOM import against pydicom alone (``import_bench``). Nothing in the lab's own work imports them.
"""
