"""A run's weights on disk, without Keras: its checkpoints (``checkpoints``: ``best.keras`` and ``last.keras``,
written atomically, checked before use) and where a run's starting weights come from and which of them fit
(``warm_start``: a finished run or a weights file, read with h5py).

Training writes and loads them; the store's check, inference, jobs (resume) and the Train page read them.
"""
