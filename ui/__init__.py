"""Dashboard helpers: widgets, cached engine reads and Plotly figure builders.

Nothing here imports TensorFlow or Keras. ``ui.figures`` and ``ui.tables`` are
pure functions (no streamlit) so they can be tested on their own.
"""
