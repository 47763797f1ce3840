"""The machine a run trains on: its training slots and the GPU each gets (``devices``), the memory a run may
use and a model's bound known before building it (``memory``), and how a run executes there: precision,
XLA, the distribution strategy, the input cache (``execution``).

Plain Python (nvidia-smi, ``os.sysconf``), never TensorFlow at import, so the dashboard, the queue and the
planner can ask. It sits below training and jobs: both choose devices from here.
"""
